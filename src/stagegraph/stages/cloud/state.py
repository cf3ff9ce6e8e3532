"""01-terraform-state on a cloud: the store every later stage keeps its state in.

aws:   an S3 bucket (versioned, KMS-encrypted, public access blocked) and a DynamoDB lock
       table; gcp: a GCS bucket (versioned, uniform access, public access prevented);
azure: a resource group, a storage account (TLS 1.2, no public blobs) and a container.
The names come from `names`, the same function that renders every later stage's backend
block, and the stage outputs the store's settings as the cloud reports them.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.cloud import names
from stagegraph.tfjson import TerraformModule, depends, literal

#: Pins the cloud state stores use (stage 01 declares them).
PINS = ("providers.aws", "providers.google", "providers.azurerm")
#: Config the cloud state stores read (stage 01 declares them).
SECTIONS = (
    "amazon_web_services.region",
    "amazon_web_services.tags",
    "google_cloud_platform.project",
    "google_cloud_platform.region",
    "azure.region",
    "azure.storage_account_postfix",
    "azure.resource_group_name",
    "azure.tags",
)


def render_store(ctx: RenderContext, m: TerraformModule) -> tuple[str, dict[str, Any]]:
    """Add the provider's store to `m`; return the backend type and its settings."""
    if ctx.provider == "aws":
        return "s3", _aws(ctx, m)
    if ctx.provider == "gcp":
        return "gcs", _gcp(ctx, m)
    return "azurerm", _azure(ctx, m)


def aws_provider(ctx: RenderContext, m: TerraformModule) -> None:
    aws = names.aws_section(ctx.config)
    body: dict[str, Any] = {"region": literal(aws.region)}
    if aws.tags:
        # default_tags: every resource of the stage carries the user's tags without repeating them.
        body["default_tags"] = [{"tags": literal(dict(aws.tags))}]
    m.provider("aws", body)


def _aws(ctx: RenderContext, m: TerraformModule) -> dict[str, Any]:
    aws_provider(ctx, m)
    cfg = ctx.config
    tags = {
        "Project": literal(cfg.project_name),
        "Environment": literal(cfg.namespace),
        "Owner": "terraform-state",
    }
    key = m.resource("aws_kms_key", "state", {"description": "Terraform state", "enable_key_rotation": True})
    bucket = m.resource(
        "aws_s3_bucket",
        "state",
        # force_destroy as in Nebari: by the time 01 is destroyed (last), the bucket holds only
        # the emptied states of the stages destroyed before it, and their old versions.
        {"bucket": names.state_bucket(cfg), "force_destroy": True, "tags": tags},
    )
    bucket_id = bucket.attr("id", sandbox=names.state_bucket(cfg))
    m.resource(
        "aws_s3_bucket_versioning",
        "state",
        {"bucket": bucket_id, "versioning_configuration": [{"status": "Enabled"}]},
    )
    block = m.resource(
        "aws_s3_bucket_public_access_block",
        "state",
        {
            "bucket": bucket_id,
            "block_public_acls": True,
            "block_public_policy": True,
            "ignore_public_acls": True,
            "restrict_public_buckets": True,
        },
    )
    m.resource(
        "aws_s3_bucket_server_side_encryption_configuration",
        "state",
        {
            "bucket": bucket_id,
            "rule": [
                {
                    "apply_server_side_encryption_by_default": [
                        {
                            "sse_algorithm": "aws:kms",
                            "kms_master_key_id": key.attr("arn", sandbox="rehearsal"),
                        }
                    ]
                }
            ],
            # S3 may answer 409 to an encryption call right after the bucket is created.
            "depends_on": depends(block),
        },
    )
    table = m.resource(
        "aws_dynamodb_table",
        "lock",
        {
            "name": names.lock_table(cfg),
            "billing_mode": "PAY_PER_REQUEST",
            "hash_key": "LockID",
            "attribute": [{"name": "LockID", "type": "S"}],
            "tags": tags,
        },
    )
    return {
        "bucket": bucket.attr("bucket"),
        "region": literal(names.aws_section(ctx.config).region),
        "encrypt": True,
        "dynamodb_table": table.attr("name"),
    }


def _gcp(ctx: RenderContext, m: TerraformModule) -> dict[str, Any]:
    gcp = names.gcp_section(ctx.config)
    m.provider("google", {"project": literal(gcp.project), "region": literal(gcp.region)})
    bucket = m.resource(
        "google_storage_bucket",
        "state",
        {
            "name": names.state_bucket(ctx.config),
            "location": literal(gcp.region),
            "force_destroy": True,  # as for S3 above
            "uniform_bucket_level_access": True,
            "public_access_prevention": "enforced",
            "versioning": [{"enabled": True}],
        },
    )
    return {"bucket": bucket.attr("name")}


def _azure(ctx: RenderContext, m: TerraformModule) -> dict[str, Any]:
    az = names.azure_section(ctx.config)
    cfg = ctx.config
    m.provider("azurerm", {"features": [{}]})
    tags = literal(dict(az.tags or {}))
    group = m.resource(
        "azurerm_resource_group",
        "state",
        {
            "name": literal(names.azure_resource_group(cfg, names.AZURE_STATE_GROUP_SUFFIX)),
            "location": literal(az.region),
            "tags": tags,
        },
    )
    account = m.resource(
        "azurerm_storage_account",
        "state",
        {
            "name": names.azure_storage_account(cfg),
            "resource_group_name": group.attr("name"),
            "location": group.attr("location"),
            "account_tier": "Standard",
            "account_replication_type": "GRS",
            "min_tls_version": "TLS1_2",
            "allow_nested_items_to_be_public": False,
            "tags": tags,
        },
    )
    container = m.resource(
        "azurerm_storage_container",
        "state",
        {
            "name": names.azure_container(cfg),
            "storage_account_id": account.attr("id", sandbox=f"rehearsal/{names.azure_storage_account(cfg)}"),
            "container_access_type": "private",
        },
    )
    return {
        "resource_group_name": group.attr("name"),
        "storage_account_name": account.attr("name"),
        "container_name": container.attr("name"),
    }
