"""Stages whose real content is not written yet (05, 06, 07, 10, 11).

They already have their place in the graph, their declared inputs, pins and typed outputs.
For the sandbox they render a Terraform twin that carries their config slice and yields
outputs of the real shape, so the whole pipeline runs end to end; for a real provider they
render only a note saying plainly that they are not written yet, and deploy refuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from pydantic import BaseModel

from stagegraph.stage import RenderContext, Rendered
from stagegraph.stages.common import header
from stagegraph.tfjson import TerraformModule, literal
from stagegraph.views import slice_values

NOTE = "NOT-WRITTEN-YET.md"


def placeholder(
    name: str,
    summary: str,
    sections: tuple[str, ...],
    values: Callable[[RenderContext], dict[str, Any]],
) -> Callable[[RenderContext], Rendered]:
    """A render yielding `values(ctx)` as outputs and carrying the config `sections`.

    Carrying the sections makes a config change visible in the rendered files, so the
    sandbox re-applies exactly the stages a real deploy would.
    """

    def render(ctx: RenderContext) -> Rendered:
        note = (
            f"# {name}: not written yet\n\n{summary}\n\n"
            "This stage has its place in the graph, its inputs, pins and typed outputs, but its "
            "Terraform for real clusters is not written yet. The sandbox provider renders a "
            "stand-in so the pipeline runs end to end; deploying it to a real cluster is refused.\n"
        )
        if not ctx.sandbox:
            return {NOTE: note}
        m = TerraformModule(sandbox=False, comment=header(name) + " Sandbox stand-in.")
        m.require(ctx.pins.version("terraform"), {})
        outputs = values(ctx)
        carried = slice_values(cast(BaseModel, ctx.config), sections)
        m.resource("terraform_data", "stand_in", {"input": {"outputs": outputs, "config": literal(carried)}})
        for key in sorted(outputs):
            m.output(key, f"${{terraform_data.stand_in.output.outputs.{key}}}", f"{key} (sandbox stand-in)")
        return {NOTE: note, "main.tf.json": m.document()}

    render.__module__ = __name__
    return render
