"""Names of cloud resources, derived from the config once so every stage agrees on them.

Nebari's names are kept (a state bucket `<project>-<namespace>-terraform-state`, a cluster
`<project>-<namespace>`), so a stage directory rendered here reads the same state a Nebari
deployment of the same config wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stagegraph.errors import RenderError
from stagegraph.schema import cloud_names

if TYPE_CHECKING:
    from stagegraph.schema.config import NebariConfig
    from stagegraph.schema.providers import (
        AmazonWebServicesProvider,
        AzureProvider,
        GoogleCloudPlatformProvider,
    )

CLOUDS = ("aws", "gcp", "azure")
#: Suffix Nebari gives the Azure resource group that holds the state storage account.
AZURE_STATE_GROUP_SUFFIX = "-state"


def is_cloud(provider: str) -> bool:
    return provider in CLOUDS


def _section(config: NebariConfig, key: str) -> Any:
    section = getattr(config, key)
    if section is None:  # validation guarantees it for the active provider
        raise RenderError(f"nebari-config.yaml: {key}: required when provider is {config.provider}")
    return section


def aws_section(config: NebariConfig) -> AmazonWebServicesProvider:
    section: AmazonWebServicesProvider = _section(config, "amazon_web_services")
    return section


def gcp_section(config: NebariConfig) -> GoogleCloudPlatformProvider:
    section: GoogleCloudPlatformProvider = _section(config, "google_cloud_platform")
    return section


def azure_section(config: NebariConfig) -> AzureProvider:
    section: AzureProvider = _section(config, "azure")
    return section


def cluster_name(config: NebariConfig) -> str:
    return f"{config.project_name}-{config.namespace}"


def state_bucket(config: NebariConfig) -> str:
    return cluster_name(config) + cloud_names.STATE_BUCKET_SUFFIX


def lock_table(config: NebariConfig) -> str:
    return f"{cluster_name(config)}-terraform-state-lock"


def azure_resource_group(config: NebariConfig, suffix: str = "") -> str:
    section = config.azure
    base = section.resource_group_name if section is not None else None
    return f"{base}{suffix}" if base else f"{config.project_name}-{config.namespace}{suffix}"


def azure_storage_account(config: NebariConfig) -> str:
    """3-24 lowercase letters and digits, unique across Azure (hence the postfix)."""
    section = config.azure
    postfix = section.storage_account_postfix if section is not None else ""
    return cloud_names.storage_account_name(config.project_name, config.namespace, postfix)


def azure_registry(config: NebariConfig) -> str:
    """Nebari's ACR name (letters and digits only, checked at validate)."""
    return cloud_names.acr_name(config.project_name, config.namespace)


def ecr_repository(config: NebariConfig) -> str:
    """Nebari's ECR repository for user images, `<project>-<namespace>-jupyterlab`."""
    return cluster_name(config) + cloud_names.ECR_SUFFIX


def artifact_repository(config: NebariConfig) -> str:
    """Nebari's Artifact Registry repository id, `<project>-<namespace>`."""
    return cluster_name(config)


def azure_container(config: NebariConfig) -> str:
    return f"{cluster_name(config)}-state"


def s3_prefix(body: dict[str, Any]) -> str:
    """The folder an existing S3 backend's `key` names (default `stagegraph`)."""
    return str(body.get("key") or "stagegraph").strip("/").removesuffix(".tfstate")


def remote_backend(config: NebariConfig, stage_dir: str) -> tuple[str, dict[str, Any]] | None:
    """The backend block of one stage directory, or None for local state.

    Terraform allows no variables in a backend block, so it is rendered as literal
    settings; stage 01 outputs the same settings (its `backend` output), built here too.
    """
    state = config.terraform_state
    if state.type == "local":
        return None
    if state.type == "existing":
        if not state.backend:
            return None
        body = dict(state.config)
        if state.backend == "s3":
            # One backend block is shared by every stage, so `key` names a folder and each
            # stage keeps its own state object in it (the same key would make every stage
            # overwrite one state). Stagegraph's records and lock live under it too.
            body["key"] = f"{s3_prefix(body)}/{stage_dir}.tfstate"
        return state.backend, dict(sorted(body.items()))
    name = cluster_name(config)
    if config.provider == "aws":
        aws = aws_section(config)
        # DynamoDB locking rather than S3's lock file (`use_lockfile`): the lock file needs
        # Terraform >= 1.10 and our floor is the lockfile's terraform pin; OpenTofu and older
        # Terraform users keep working, and it is Nebari's table, so existing state moves over.
        return "s3", {
            "bucket": state_bucket(config),
            "key": f"terraform/{name}/{stage_dir}.tfstate",
            "region": aws.region,
            "encrypt": True,
            "dynamodb_table": lock_table(config),
        }
    if config.provider == "gcp":
        return "gcs", {
            "bucket": state_bucket(config),
            "prefix": f"terraform/{config.project_name}/{stage_dir}",
        }
    if config.provider == "azure":
        return "azurerm", {
            "resource_group_name": azure_resource_group(config, AZURE_STATE_GROUP_SUFFIX),
            "storage_account_name": azure_storage_account(config),
            "container_name": azure_container(config),
            "key": f"terraform/{name}/{stage_dir}",
        }
    # remote on sandbox/local/existing: local state next to each stage, as before.
    return None
