"""Helpers for the plugin tests: write plugin modules, build a project's stages in process."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from stagegraph.graph import StageGraph, build_graph
from stagegraph.plugins.manager import stages_for

#: A Terraform stage a test plugin can yield: `stage("045-x", ("04-kubernetes-ingress",), 45)`.
STAGE_HELPER = """
from stagegraph.plugins.hookspecs import hookimpl
from stagegraph.stage import Stage
from stagegraph.tfjson import TerraformModule


def stage(name, depends_on=(), priority=0, description="from a test plugin", **extra):
    def render(ctx):
        m = TerraformModule(sandbox=ctx.sandbox, comment=name)
        m.resource("terraform_data", "marker", {"input": name})
        return {"main.tf.json": m.document()}

    return Stage(
        name=name, description=description, render=render, depends_on=tuple(depends_on),
        priority=priority, **extra
    )
"""


def write_plugin(folder: Path, name: str, body: str, *, helper: bool = True) -> Path:
    """Write `<folder>/<name>.py`: the stage helper (unless told not to) plus `body`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text((STAGE_HELPER if helper else "") + textwrap.dedent(body), encoding="utf-8")
    return path


def plugins_config(
    *, imports: tuple[str, ...] = (), enabled: tuple[str, ...] = (), **settings: Any
) -> dict[str, Any]:
    section: dict[str, Any] = {"import": list(imports), "enabled": list(enabled)}
    if settings:
        section["settings"] = settings
    return {"stagegraph": {"plugins": section}}


def graph_for(raw: dict[str, Any], base: Path) -> StageGraph:
    return build_graph(stages_for(raw, base=base, config_name="nebari-config.yaml"))
