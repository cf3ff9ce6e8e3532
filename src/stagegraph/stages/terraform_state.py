"""01-terraform-state: where every later stage keeps its Terraform state.

For local and existing deployments with `terraform_state.type: remote` (the default)
every stage from 03 on (existing: every stage) keeps its state in a Secret of the cluster
through Terraform's kubernetes backend, as Nebari does; sandbox keeps a local
`terraform.tfstate` next to each stage. This stage records that layout (and the config that chose it)
so that a change of state backend is a visible, applied change. On a cloud with
`terraform_state.type: remote` (the default) it creates the state store instead
(`stagegraph.stages.cloud.state`), keeping its own state locally as Nebari does, and every
later stage directory gets a `backend.tf.json` pointing at the store.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stagegraph.stage import RenderContext, Rendered, Stage, StageIO
from stagegraph.stages.cloud import names, state
from stagegraph.stages.common import header, require_rendered_provider
from stagegraph.tfjson import TerraformModule, literal

NAME = "01-terraform-state"


class TerraformStateOutputs(StageIO):
    state_backend: str = Field(description="Backend every later stage uses: local or a remote type.")
    backend_settings: dict[str, Any] | None = Field(
        None, description="The remote store's settings as created (bucket, table, account, ...); null: local."
    )


def render(ctx: RenderContext) -> Rendered:
    require_rendered_provider(ctx, NAME)
    cfg = ctx.config
    state = cfg.terraform_state
    if names.is_cloud(ctx.provider) and state.type == "remote":
        return {"main.tf.json": _cloud_store(ctx)}
    m = TerraformModule(sandbox=False, comment=header(NAME))  # built-in provider only: same everywhere
    m.require(ctx.pins.version("terraform"), {})
    backend = state.backend if state.type == "existing" and state.backend else "local"
    if state.type == "remote" and ctx.provider in ("existing", "local"):
        backend = "kubernetes"  # Nebari's: Secrets in the cluster (`names.kube_backend`)
    m.resource(
        "terraform_data",
        "state_layout",
        {
            "input": literal(
                {
                    "project": cfg.project_name,
                    "namespace": cfg.namespace,
                    "state_type": state.type,
                    "backend": backend,
                    "layout": "one terraform.tfstate per stage directory",
                }
            )
        },
    )
    m.output(
        "state_backend",
        "${terraform_data.state_layout.output.backend}",
        "Backend every later stage uses.",
    )
    return {"main.tf.json": m.document()}


def _cloud_store(ctx: RenderContext) -> dict[str, Any]:
    m = TerraformModule(sandbox=ctx.sandbox, comment=header(NAME))
    provider = {"aws": "aws", "gcp": "google", "azure": "azurerm"}[ctx.provider]
    m.require(ctx.pins.version("terraform"), {provider: ctx.pins.provider(provider)})
    kind, settings = state.render_store(ctx, m)
    m.output("state_backend", kind, "Backend every later stage uses.")
    m.output("backend_settings", settings, "Settings of the remote state store.")
    return m.document()


STAGE = Stage(
    name=NAME,
    description="Terraform state: the S3 / GCS / Azure store on clouds, else local state per stage",
    render=render,
    config_sections=("terraform_state", "project_name", "namespace", *state.SECTIONS),
    pins=("terraform", *state.PINS),
    outputs=TerraformStateOutputs,
    mock_outputs=TerraformStateOutputs(state_backend="local"),
    provider_subdir=True,
    priority=10,
)
