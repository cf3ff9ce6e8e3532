"""The container registry stage 02 creates on each cloud, as Nebari does, and who may pull.

- AWS: an ECR repository `<project>-<namespace>-jupyterlab`, scanned on push, tagged like
  the rest of the stage; the node role already holds `AmazonEC2ContainerRegistryReadOnly`
  (`aws_iam.NODE_POLICIES`), so every node pulls from it.
- GCP: a Docker Artifact Registry repository `<project>-<namespace>` in the cluster's region;
  the node pools' service account holds `roles/artifactregistry.reader` (`gcp._NODE_ROLES`).
- Azure: a Standard ACR named `<project><namespace>` (escaped as Nebari escapes it) in the
  cluster's resource group. Nebari stops there, so its nodes cannot pull from the registry
  it made; here the cluster's kubelet identity gets `AcrPull` on it.

Each returns the registry's address (`docker push <address>/<image>:<tag>`), stage 02's
`container_registry` output. In a rehearsal the resources are twins and the address is
built from the same names, with a placeholder AWS account.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.cloud import names
from stagegraph.tfjson import Ref, TerraformModule, literal

#: The account id a rehearsal puts in AWS addresses (no real account has it).
REHEARSAL_ACCOUNT = "000000000000"


def ecr(ctx: RenderContext, m: TerraformModule) -> str:
    cfg = ctx.config
    aws = names.aws_section(cfg)
    repository = names.ecr_repository(cfg)
    ref = m.resource(
        "aws_ecr_repository",
        "jupyterlab",
        {
            "name": literal(repository),
            "image_scanning_configuration": [{"scan_on_push": True}],
            # Nebari's tags (the user's come from the provider's default_tags). No
            # force_delete: a destroy stops at a repository still holding users' images.
            "tags": {
                "Name": literal(repository),
                "Project": literal(cfg.project_name),
                "Environment": literal(cfg.namespace),
                "Owner": "terraform",
            },
        },
    )
    url: str = ref.attr(
        "repository_url",
        sandbox=f"{REHEARSAL_ACCOUNT}.dkr.ecr.{literal(aws.region)}.amazonaws.com/{literal(repository)}",
    )
    return url


def artifact_registry(ctx: RenderContext, m: TerraformModule) -> str:
    gcp = names.gcp_section(ctx.config)
    ref = m.resource(
        "google_artifact_registry_repository",
        "jupyterhub",
        {
            "repository_id": literal(names.artifact_repository(ctx.config)),
            "location": literal(gcp.region),
            # Written out (the provider would default to it) so the address below reads it.
            "project": literal(gcp.project),
            "format": "DOCKER",
        },
    )
    # The provider pinned here computes no address: Docker repositories live at
    # <location>-docker.pkg.dev/<project>/<repository id>.
    return f"{ref.attr('location')}-docker.pkg.dev/{ref.attr('project')}/{ref.attr('repository_id')}"


def acr(ctx: RenderContext, m: TerraformModule, group: Ref, aks: Ref, tags: Any) -> str:
    registry = names.azure_registry(ctx.config)
    ref = m.resource(
        "azurerm_container_registry",
        "main",
        {
            "name": literal(registry),
            "resource_group_name": group.attr("name"),
            "location": group.attr("location"),
            "sku": "Standard",
            "tags": tags,
        },
    )
    m.resource(
        "azurerm_role_assignment",
        "kubelet_acr_pull",
        {
            "scope": ref.attr("id", sandbox=f"rehearsal/{literal(registry)}"),
            "role_definition_name": "AcrPull",
            "principal_id": aks.attr(
                "kubelet_identity[0].object_id", sandbox="00000000-0000-0000-0000-000000000000"
            ),
            # The kubelet identity is minutes old at first deploy; Entra ID may not list it yet.
            "skip_service_principal_aad_check": True,
        },
    )
    url: str = ref.attr("login_server", sandbox=f"{literal(registry).lower()}.azurecr.io")
    return url
