"""01-terraform-state: where every later stage keeps its Terraform state.

For local, existing and sandbox deployments Nebari keeps a local `terraform.tfstate` next
to each stage, and so do we; this stage records that layout (and the config that chose it)
so that a change of state backend is a visible, applied change. Remote backends for the
cloud providers (S3, GCS, Azure Storage) come with the cloud stages.
"""

from __future__ import annotations

from pydantic import Field

from stagegraph.stage import RenderContext, Rendered, Stage, StageIO
from stagegraph.stages.common import header, require_rendered_provider
from stagegraph.tfjson import TerraformModule, literal

NAME = "01-terraform-state"


class TerraformStateOutputs(StageIO):
    state_backend: str = Field(description="Backend every later stage uses: local or a remote type.")


def render(ctx: RenderContext) -> Rendered:
    require_rendered_provider(ctx, NAME)
    cfg = ctx.config
    state = cfg.terraform_state
    m = TerraformModule(sandbox=False, comment=header(NAME))  # built-in provider only: same everywhere
    m.require(ctx.pins.version("terraform"), {})
    backend = state.backend if state.type == "existing" and state.backend else "local"
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


STAGE = Stage(
    name=NAME,
    description="Terraform state layout: local state per stage (remote backends with cloud providers)",
    render=render,
    config_sections=("terraform_state", "project_name", "namespace"),
    pins=("terraform",),
    outputs=TerraformStateOutputs,
    mock_outputs=TerraformStateOutputs(state_backend="local"),
    provider_subdir=True,
    priority=10,
)
