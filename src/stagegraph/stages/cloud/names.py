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


def folder_prefix(body: dict[str, Any], setting: str) -> str:
    """The folder a gcs backend's `prefix` or an azurerm backend's `key` names (default
    `stagegraph`); stagegraph's records and lock live in it, beside the stages' state.

    A `key` that names a state blob (`team/prod.tfstate`) stands for its folder (`team`;
    `prod` when it has none); any other key is the folder itself.
    """
    value = str(body.get(setting) or "").strip("/")
    if value.endswith(".tfstate"):
        folder, _, blob = value.rpartition("/")
        value = folder or blob.removesuffix(".tfstate")
    return value or "stagegraph"


def kube_state_deployment(config: NebariConfig) -> str:
    """What names a deployment's objects in a kubernetes backend's namespace.

    `project-namespace`, as Nebari's `secret_suffix` starts, lowercased with `_` as `-`
    (Secret names are DNS subdomains); `secret_suffix` in an `existing` kubernetes
    backend's config replaces it.
    """
    state = config.terraform_state
    if state.type == "existing" and state.config.get("secret_suffix"):
        return state.config["secret_suffix"]
    return cluster_name(config).lower().replace("_", "-")


def kube_backend(config: NebariConfig, stage: str) -> dict[str, Any]:
    """The kubernetes backend of one stage on `local`/`existing` with `type: remote`.

    As Nebari does: `secret_suffix` per stage (the state Secret is
    `tfstate-default-<project>-<namespace>-<stage>`) in the `default` namespace (it exists
    before stage 03 creates the deployment's own). The block names no kubeconfig and no
    context: stagegraph gives Terraform KUBE_CONFIG_PATH and KUBE_CTX from where
    02-infrastructure finds the cluster (`sharedstate.backend_env`), so the render holds no
    machine path and a new kubeconfig or context is not a backend change (which Terraform
    would refuse without `init -reconfigure`). By hand: export the same two variables.
    """
    return {
        "secret_suffix": f"{kube_state_deployment(config)}-{stage}",
        "namespace": "default",
        "load_config_file": True,
    }


def remote_folder(config: NebariConfig) -> str:
    """The folder of the store stage 01 creates that holds a cloud deployment's state (as
    Nebari names it): every later stage's state, and stagegraph's records, lock and a copy
    of 01's own state (`sharedstate.bootstrap`)."""
    if config.provider == "gcp":
        return f"terraform/{config.project_name}"
    return f"terraform/{cluster_name(config)}"


def remote_backend(
    config: NebariConfig, stage_dir: str, stage: str | None = None
) -> tuple[str, dict[str, Any]] | None:
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
        if state.backend == "kubernetes" and stage is not None:
            # As for s3: one Secret per stage, named from the suffix.
            body["secret_suffix"] = f"{kube_state_deployment(config)}-{stage}"
        if state.backend == "s3":
            # One backend block is shared by every stage, so `key` names a folder and each
            # stage keeps its own state object in it (the same key would make every stage
            # overwrite one state). Stagegraph's records and lock live under it too.
            body["key"] = f"{s3_prefix(body)}/{stage_dir}.tfstate"
        if state.backend == "gcs":
            # The same for gcs: each stage's own prefix (`<prefix>/<stage>/default.tfstate`).
            body["prefix"] = f"{folder_prefix(body, 'prefix')}/{stage_dir}"
        if state.backend == "azurerm":
            # And for azurerm: `key` is one blob, so it names a folder of one blob per stage.
            body["key"] = f"{folder_prefix(body, 'key')}/{stage_dir}.tfstate"
        return state.backend, dict(sorted(body.items()))
    if config.provider == "aws":
        aws = aws_section(config)
        # DynamoDB locking rather than S3's lock file (`use_lockfile`): the lock file needs
        # Terraform >= 1.10 and our floor is the lockfile's terraform pin; OpenTofu and older
        # Terraform users keep working, and it is Nebari's table, so existing state moves over.
        return "s3", {
            "bucket": state_bucket(config),
            "key": f"{remote_folder(config)}/{stage_dir}.tfstate",
            "region": aws.region,
            "encrypt": True,
            "dynamodb_table": lock_table(config),
        }
    if config.provider == "gcp":
        return "gcs", {
            "bucket": state_bucket(config),
            "prefix": f"{remote_folder(config)}/{stage_dir}",
        }
    if config.provider == "azure":
        return "azurerm", {
            "resource_group_name": azure_resource_group(config, AZURE_STATE_GROUP_SUFFIX),
            "storage_account_name": azure_storage_account(config),
            "container_name": azure_container(config),
            "key": f"{remote_folder(config)}/{stage_dir}",
        }
    if config.provider in ("existing", "local") and stage is not None:
        # Nebari's kubernetes backend: state Secrets in the cluster. The kind cluster of
        # `local` exists only once 02 applied, so 01 and 02 keep local state there.
        if config.provider == "local" and stage in ("01-terraform-state", "02-infrastructure"):
            return None
        return "kubernetes", kube_backend(config, stage)
    # remote on sandbox: local state next to each stage, as before.
    return None
