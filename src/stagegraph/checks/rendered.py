"""The Terraform stages of one config, rendered in memory, ready for the provider check.

Each stage gets its upstream variables from the mock outputs its upstream stages declare
(what `doit plan` uses before they are applied), so a stage is checked without anything
applied. The sandbox provider renders only Terraform's built-in `terraform_data` and is
not a real-provider render: it is skipped with a note, as are manifest stages (10, 11),
which the Kubernetes schema checks cover.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stagegraph.checks.providers import SECRET_PLACEHOLDER, StageUnderCheck
from stagegraph.errors import DeployError, RenderError
from stagegraph.render import render_stage
from stagegraph.stage import Stage, Upstream

if TYPE_CHECKING:
    from pydantic import BaseModel

    from stagegraph.graph import StageGraph
    from stagegraph.lockfile import Lockfile
    from stagegraph.schema.config import NebariConfig


def mock_variables(graph: StageGraph | Mapping[str, Stage], stage: Stage) -> dict[str, Any]:
    """The stage's Terraform variables built from its upstream stages' declared mock outputs."""
    outputs: dict[str, BaseModel] = {}
    for dep in stage.depends_on:
        mock = graph[dep].mock_outputs
        if mock is None:
            raise DeployError(
                f"stage {stage.name}: upstream stage {dep} declares no mock_outputs, so {stage.name} "
                f"cannot be checked before {dep} is applied; declare mock_outputs on {dep}"
            )
        outputs[dep] = mock
    data: dict[str, Any] = stage.connect(Upstream(stage.name, outputs)).model_dump(mode="json")
    return data


def secret_placeholder(config: NebariConfig, path: str) -> str | None:
    """A stand-in shaped like what the engine would pass for the secret at `path`.

    None where the config sets no secret (the variable stays null, as in a deploy); for
    the `secrets:` section, the JSON object {name: value} the engine builds; else a string.
    The check needs no key and never sees a real secret.
    """
    from stagegraph.secretvalues import lookup

    value = lookup(config, path)
    if value is None or value == []:
        return None
    if isinstance(value, list):
        return json.dumps(
            {getattr(entry, "name", str(i)): SECRET_PLACEHOLDER for i, entry in enumerate(value)}
        )
    return SECRET_PLACEHOLDER


def stages_to_check(
    config: NebariConfig, graph: StageGraph, lock: Lockfile, lockfile_name: str, label: str
) -> tuple[list[StageUnderCheck], list[str]]:
    """(stages to check, one-line notes on what was skipped and why)."""
    if config.provider == "sandbox":
        return [], [f"{label}: provider sandbox renders only the built-in terraform_data; nothing to check"]
    stages: list[StageUnderCheck] = []
    notes: list[str] = []
    for stage in graph.stages:
        if stage.kind != "terraform":
            notes.append(f"{label} {stage.name}: {stage.kind} stage, not Terraform")
            continue
        try:
            rendered = render_stage(stage, config, lock, lockfile_name)
        except RenderError as exc:
            notes.append(f"{label} {stage.name}: not rendered: {exc}")
            continue
        if not any(name.endswith(".tf.json") for name in rendered.files):
            notes.append(f"{label} {stage.name}: renders no Terraform files")
            continue
        stages.append(under_check(f"{label} {stage.name}", rendered.files, stage, graph, config))
    return stages, notes


def under_check(
    label: str,
    files: Mapping[str, bytes],
    stage: Stage,
    graph: StageGraph | Mapping[str, Stage],
    config: NebariConfig | None,
) -> StageUnderCheck:
    """A rendered stage with its mock upstream variables and stand-ins for its secrets."""
    sensitive: dict[str, str] = {}
    for item in stage.sensitive:
        value = secret_placeholder(config, item.config_path) if config is not None else SECRET_PLACEHOLDER
        if value is not None:
            sensitive[item.variable] = value
    return StageUnderCheck(label, files, mock_variables(graph, stage), sensitive)
