"""A stage's inputs: the one place they are assembled, for every command that decides.

`status`, `why`, `plan`, `apply_plan`, `deploy` and `destroy` all call `stage_inputs`, so
they can never disagree about what a stage depends on. The pieces are:

- the rendered files, as digests: on disk (what Terraform will read) or from a render in
  memory (what the next `doit deploy`, which renders first, will write);
- the variables it takes from upstream stages, built from their typed outputs: recorded
  ones (what an apply now would pass), planned or predicted ones (what it will pass after
  the upstream re-applies), or declared mocks (plans only);
- keyed digests of the secrets it reads (no decryption needed);
- its pins, and what its render read (config sections, code: they explain, not decide).

Secrets themselves are resolved only by `secret_env`, in memory, for the driver.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from stagegraph.errors import DeployError
from stagegraph.fingerprint import deploy_inputs, digest_key, fingerprint, render_inputs_of, rendered_files
from stagegraph.render import file_digest
from stagegraph.secretvalues import resolve_secret, secret_digests
from stagegraph.stage import MachineContext, Stage, Upstream

if TYPE_CHECKING:
    from stagegraph.project import Project

Files = Literal["disk", "fresh", "none"]


@dataclass(frozen=True)
class StageInputs:
    """Everything an apply of one stage depends on, as named digests, plus its variables."""

    stage: str
    variables: dict[str, Any]
    inputs: dict[str, str]
    #: Upstream stages whose declared mock outputs stood in (plans only).
    mocked: tuple[str, ...] = ()
    #: The rendered files in memory, when `files="fresh"` (for output predictions).
    fresh_files: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.inputs)


def recorded_outputs(project: Project, name: str) -> BaseModel | None:
    """The typed outputs of `name`'s last successful apply, or None if nothing is applied."""
    stage = project.graph[name]
    record = project.records.get(name)
    if record is None or record.status == "destroyed" or record.applied_at is None:
        return None
    try:
        return stage.outputs.model_validate(record.outputs)
    except ValidationError as exc:
        raise DeployError(
            f"stage {name}: recorded outputs no longer match {stage.outputs.__name__} "
            f"({exc.errors()[0]['msg']}); re-apply it with `doit {name}`"
        ) from None


def upstream_outputs(
    project: Project,
    stage: Stage,
    *,
    allow_mocks: bool = False,
    override: Mapping[str, BaseModel] | None = None,
) -> tuple[dict[str, BaseModel], list[str]]:
    """Typed outputs of every stage `stage` depends on.

    `override` (planned or predicted outputs of upstreams that will re-apply) wins over the
    records; mocks stand in only when allowed and nothing is applied.
    """
    outputs: dict[str, BaseModel] = {}
    mocked: list[str] = []
    for dep in stage.depends_on:
        if override is not None and dep in override:
            outputs[dep] = override[dep]
            continue
        recorded = recorded_outputs(project, dep)
        dep_stage = project.graph[dep]
        if recorded is not None:
            outputs[dep] = recorded
        elif allow_mocks and dep_stage.mock_outputs is not None:
            outputs[dep] = dep_stage.mock_outputs
            mocked.append(dep)
        else:
            raise DeployError(
                f"stage {stage.name} needs the outputs of {dep}, which is not applied; "
                f"run `doit {dep}` (or `doit deploy`) first"
            )
    return outputs, mocked


def variables_from(project: Project, stage: Stage, outputs: Mapping[str, BaseModel]) -> dict[str, Any]:
    """The stage's Terraform variables: from its upstreams' typed outputs, and from the
    deploying machine where the stage reads it (`Stage.machine_inputs`)."""
    model = stage.connect(Upstream(stage.name, dict(outputs)))
    values: dict[str, Any] = model.model_dump(mode="json")
    if stage.machine_inputs is not None:
        values.update(stage.machine_inputs(machine_context(project)))
    return values


def variables_for(
    project: Project, stage: Stage, *, allow_mocks: bool = False
) -> tuple[dict[str, Any], list[str]]:
    outputs, mocked = upstream_outputs(project, stage, allow_mocks=allow_mocks)
    return variables_from(project, stage, outputs), mocked


def machine_context(project: Project) -> MachineContext:
    """The deploying machine as stages may read it (environment, home, working directory)."""
    return MachineContext(
        config=project.config,
        config_dir=project.config_path.parent,
        config_name=project.config_name,
        environ=dict(os.environ),
        home=Path.home(),
        cwd=Path.cwd(),
    )


def secret_env(project: Project, stage: Stage) -> tuple[dict[str, str], dict[str, str]]:
    """TF_VAR_* environment for the stage's sensitive variables, and their keyed digests.

    The digests are `stage_inputs`' own (no decryption needed for them), so what an apply
    records is exactly what `status` compares against.
    """
    env: dict[str, str] = {}
    for item in stage.sensitive:
        value = resolve_secret(project.config, item.config_path, project.config_name, project.root)
        if value is not None:
            env[f"TF_VAR_{item.variable}"] = value
    return env, _secret_digests(project, stage)


def _secret_digests(project: Project, stage: Stage) -> dict[str, str]:
    if not stage.sensitive:
        return {}
    key = digest_key(project.state_dir)
    return secret_digests(project.config, stage.sensitive, project.config_name, project.root, key)


def stage_inputs(
    project: Project,
    stage: Stage,
    *,
    files: Files = "disk",
    allow_mocks: bool = False,
    upstream: Mapping[str, BaseModel] | None = None,
) -> StageInputs:
    """The inputs of `stage` now; the single assembly every command decides with.

    `files="disk"`: the rendered files as Terraform will read them (deploy, plan, destroy);
    `files="fresh"`: as the next render writes them (status, why); `files="none"`: no
    files (destroy needs the variables only). `upstream` overrides
    the recorded outputs of upstreams that will change first (see `stagegraph.prediction`).
    """
    fresh: Mapping[str, bytes] = {}
    if files == "fresh":
        from stagegraph.render import render_stage

        rendered = render_stage(stage, project.config, project.lock, project.lockfile_name)
        fresh = rendered.files
        file_digests = {name: file_digest(data) for name, data in fresh.items()}
        explain: Mapping[str, str] = rendered.inputs
    elif files == "none":  # destroy: only the variables matter, the render may be gone
        file_digests, explain = {}, {}
    else:
        stage_dir = project.stage_dir(stage)
        file_digests = rendered_files(stage_dir, stage.name)
        explain = render_inputs_of(stage_dir)
    outputs, mocked = upstream_outputs(project, stage, allow_mocks=allow_mocks, override=upstream)
    variables = variables_from(project, stage, outputs)
    digests = _secret_digests(project, stage)
    inputs = deploy_inputs(stage, file_digests, variables, project.lock, digests, explain)
    return StageInputs(stage.name, variables, inputs, tuple(mocked), fresh)


def current_inputs(project: Project, stage: Stage, *, fresh: bool = False) -> dict[str, str]:
    """The named input digests of `stage` now (see `stage_inputs`)."""
    return stage_inputs(project, stage, files="fresh" if fresh else "disk").inputs
