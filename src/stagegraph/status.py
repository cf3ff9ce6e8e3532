"""Per-stage state (applied, stale, deferred, never applied, failed, destroyed) and why.

`status` and `why` answer "what will the next `doit deploy` do", through the same walk
(`stagegraph.prediction`) and the same inputs (`stagegraph.inputs`) the deploy uses.
`is_up_to_date` answers the deploy's own question at the moment a stage runs: its inputs
as on disk now, its upstreams as recorded now (they applied before it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stagegraph.errors import StagegraphError
from stagegraph.inputs import stage_inputs
from stagegraph.prediction import FIRST_APPLY_FAILED, StageState, predict
from stagegraph.render import read_manifest
from stagegraph.tfstate import StateError, check_state

if TYPE_CHECKING:
    from stagegraph.project import Project
    from stagegraph.stage import Stage

__all__ = [
    "FIRST_APPLY_FAILED",
    "StageState",
    "differs_from_fresh_render",
    "is_up_to_date",
    "predict",
    "stage_state",
    "why",
]


def stage_state(project: Project, name: str) -> StageState:
    """What the next deploy does with `name` (and, to decide it, with what it needs)."""
    return predict(project, [name])[name]


def is_up_to_date(project: Project, name: str) -> bool:
    """Applied, and the inputs on disk now have the fingerprint of that apply."""
    record = project.records.get(name)
    if record is None or record.status != "applied" or record.fingerprint is None:
        return False
    stage = project.graph[name]
    try:
        if check_state(name, project.stage_dir(stage), record.state):
            return False  # an older copy of the state: the apply brings it up to date
        now = stage_inputs(project, stage)
    except (StateError, StagegraphError):
        return False  # the action reports it
    return now.fingerprint == record.fingerprint


def why(project: Project, name: str) -> list[str]:
    """Lines saying why `name` would (or would not) re-apply on the next deploy."""
    state = stage_state(project, name)
    when = f" (last applied {state.applied_at:%Y-%m-%d %H:%M:%S} UTC)" if state.applied_at else ""
    notes = [f"  note: {n}" for n in state.notes]
    if state.state == "applied":
        return [f"{name}: up to date{when}; no input changed since the last apply", *notes]
    if state.state == "never applied":
        return [f"{name}: never applied; the next deploy applies it", *notes]
    if state.state == "destroyed":
        return [f"{name}: destroyed{when}; the next deploy applies it", *notes]
    if state.state == "failed" and state.applied_at is None:
        return [f"{name}: failed; its first apply failed and the next deploy retries it", *state.reasons]
    if state.state == "failed":
        return [f"{name}: the last attempt failed{when}; the next deploy retries it", *state.reasons, *notes]
    if state.state == "state lost":
        return [
            f"{name}: state lost{when}; deploy, plan and destroy refuse this stage until it is fixed:",
            *state.reasons,
        ]
    if state.state == "deferred":
        head = f"{name}: deferred{when}; whether it re-applies is known only after an upstream applies:"
        return [head, *(f"  {r}" for r in state.reasons), *notes]
    if state.state == "unknown":
        return [f"{name}: unknown; {state.reasons[0]}"]
    if state.via:
        head = f"{name}: stale via {', '.join(state.via)}{when}; the next deploy re-applies it after them:"
    else:
        head = f"{name}: stale{when}; changed since the last apply:"
    return [head, *(f"  {r}" for r in state.reasons), *notes]


def differs_from_fresh_render(project: Project, stage: Stage) -> list[str]:
    """For --disable-render: files on disk that a fresh render would write differently."""
    from stagegraph.render import render_stage

    fresh = render_stage(stage, project.config, project.lock, project.lockfile_name)
    stage_dir = project.stage_dir(stage)
    manifest = read_manifest(stage_dir) or {}
    names = set(fresh.files) | set(manifest.get("files", {}))
    out = []
    for fname in sorted(names):
        try:
            on_disk: bytes | None = (stage_dir / fname).read_bytes()
        except OSError:
            on_disk = None
        if on_disk != fresh.files.get(fname):
            out.append(fname)
    return out
