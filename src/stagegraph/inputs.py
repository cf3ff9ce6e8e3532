"""A stage's inputs right now: upstream outputs, its variables, its secrets, its fingerprint inputs.

Upstream outputs come from the records of the stages it depends on, validated against their
typed models (or their declared mock outputs, for `plan` only). Secrets are resolved in
memory and handed to the driver's environment; only their digests are ever recorded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from stagegraph.errors import DeployError
from stagegraph.fingerprint import (
    deploy_inputs,
    digest_key,
    render_inputs_of,
    rendered_files,
    secret_digest,
)
from stagegraph.render import file_digest
from stagegraph.secretvalues import resolve_secret, secret_digest_input, secret_digests
from stagegraph.stage import MachineContext, Stage, Upstream

if TYPE_CHECKING:
    from stagegraph.project import Project


def upstream_outputs(
    project: Project, stage: Stage, *, allow_mocks: bool = False
) -> tuple[dict[str, BaseModel], list[str]]:
    """Typed outputs of every stage `stage` depends on (mocks only when allowed)."""
    outputs: dict[str, BaseModel] = {}
    mocked: list[str] = []
    for dep in stage.depends_on:
        dep_stage = project.graph[dep]
        record = project.records.get(dep)
        if record is not None and record.status != "destroyed" and record.applied_at is not None:
            try:
                outputs[dep] = dep_stage.outputs.model_validate(record.outputs)
            except ValidationError as exc:
                raise DeployError(
                    f"stage {dep}: recorded outputs no longer match {dep_stage.outputs.__name__} "
                    f"({exc.errors()[0]['msg']}); re-apply it with `doit {dep}`"
                ) from None
        elif allow_mocks and dep_stage.mock_outputs is not None:
            outputs[dep] = dep_stage.mock_outputs
            mocked.append(dep)
        else:
            raise DeployError(
                f"stage {stage.name} needs the outputs of {dep}, which is not applied; "
                f"run `doit {dep}` (or `doit deploy`) first"
            )
    return outputs, mocked


def variables_for(
    project: Project, stage: Stage, *, allow_mocks: bool = False
) -> tuple[dict[str, Any], list[str]]:
    outputs, mocked = upstream_outputs(project, stage, allow_mocks=allow_mocks)
    model = stage.connect(Upstream(stage.name, outputs))
    values: dict[str, Any] = model.model_dump(mode="json")
    if stage.machine_inputs is not None:
        values.update(stage.machine_inputs(machine_context(project)))
    return values, mocked


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
    """TF_VAR_* environment for the stage's sensitive variables, and their keyed digests."""
    env: dict[str, str] = {}
    digests: dict[str, str] = {}
    if not stage.sensitive:
        return env, digests
    key = digest_key(project.state_dir)
    for item in stage.sensitive:
        value = resolve_secret(project.config, item.config_path, project.config_name, project.root)
        if value is None:
            continue
        env[f"TF_VAR_{item.variable}"] = value
        # An encrypted secret counts by its ciphertext; a plaintext one by a keyed digest.
        encrypted = secret_digest_input(project.config, item.config_path, project.root)
        digests[item.variable] = encrypted or secret_digest(key, value)
    return env, digests


def current_inputs(project: Project, stage: Stage, *, fresh: bool = False) -> dict[str, str]:
    """The stage's inputs now: from the files on disk, or (fresh) from a render in memory.

    `fresh` answers "what would the next `doit deploy` do", which renders first; the deploy
    tasks themselves run after their render task, so the disk is already fresh for them.
    """
    stage_dir = project.stage_dir(stage)
    if fresh:
        from stagegraph.render import render_stage

        rendered = render_stage(stage, project.config, project.lock, project.lockfile_name)
        files = {name: file_digest(data) for name, data in rendered.files.items()}
        variables, _ = variables_for(project, stage)
        digests = secret_digests(
            project.config, stage.sensitive, project.config_name, project.root, digest_key(project.state_dir)
        )
        return deploy_inputs(stage, files, variables, project.lock, digests, rendered.inputs)
    files = rendered_files(stage_dir, stage.name)
    variables, _ = variables_for(project, stage)
    digests = secret_digests(
        project.config, stage.sensitive, project.config_name, project.root, digest_key(project.state_dir)
    )
    return deploy_inputs(stage, files, variables, project.lock, digests, render_inputs_of(stage_dir))
