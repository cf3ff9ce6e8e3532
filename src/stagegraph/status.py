"""Per-stage state (applied, stale, never applied, failed, destroyed) and why it is so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from stagegraph.errors import StagegraphError
from stagegraph.fingerprint import (
    changed_inputs,
    fingerprint,
)
from stagegraph.render import read_manifest
from stagegraph.stage import Stage
from stagegraph.tfstate import StateError, check_state

if TYPE_CHECKING:
    from stagegraph.project import Project

from stagegraph.inputs import current_inputs

#: Said of a stage whose first apply failed: Terraform may have created part of it.
FIRST_APPLY_FAILED = (
    "resources of its first apply may already exist; the next deploy retries it, `doit destroy` removes them"
)


@dataclass(frozen=True)
class StageState:
    stage: str
    state: str  # applied | stale | never applied | failed | destroyed | state lost | unknown
    applied_at: datetime | None
    reasons: tuple[str, ...]


def stage_state(project: Project, name: str, *, fresh: bool = False) -> StageState:
    stage = project.graph[name]
    try:
        record = project.records.get(name)
    except StagegraphError as exc:  # a corrupt record: say so, keep the view usable
        return StageState(name, "unknown", None, (str(exc),))
    if record is None:
        return StageState(name, "never applied", None, ())
    if record.status == "destroyed":
        return StageState(name, "destroyed", record.applied_at, ())
    try:
        older_state = check_state(name, project.stage_dir(stage), record.state)
    except StateError as exc:
        return StageState(name, "state lost", record.applied_at, (str(exc),))
    if record.status == "failed":
        if record.applied_at is None:
            if record.log is None:  # only ever planned, or stopped before anything ran
                return StageState(name, "never applied", None, (record.error or "",))
            return StageState(name, "failed", None, (record.error or "", FIRST_APPLY_FAILED))
        return StageState(name, "failed", record.applied_at, (record.error or "",))
    try:
        now = current_inputs(project, stage, fresh=fresh)
    except StagegraphError as exc:
        return StageState(name, "stale", record.applied_at, (str(exc),))
    if older_state:
        return StageState(name, "stale", record.applied_at, (older_state,))
    if fingerprint(now) == record.fingerprint:
        return StageState(name, "applied", record.applied_at, ())
    return StageState(name, "stale", record.applied_at, tuple(changed_inputs(record.inputs, now)))


def is_up_to_date(project: Project, name: str) -> bool:
    return stage_state(project, name).state == "applied"


def why(project: Project, name: str) -> list[str]:
    """Lines saying why `name` would (or would not) re-apply on the next deploy."""
    state = stage_state(project, name, fresh=True)
    when = f" (last applied {state.applied_at:%Y-%m-%d %H:%M:%S} UTC)" if state.applied_at else ""
    if state.state == "applied":
        return [f"{name}: up to date{when}; no input changed since the last apply"]
    if state.state == "never applied":
        return [f"{name}: never applied; the next deploy applies it"]
    if state.state == "destroyed":
        return [f"{name}: destroyed{when}; the next deploy applies it"]
    if state.state == "failed" and state.applied_at is None:
        return [f"{name}: failed; its first apply failed and the next deploy retries it", *state.reasons]
    if state.state == "failed":
        return [f"{name}: the last attempt failed{when}; the next deploy retries it", *state.reasons]
    if state.state == "state lost":
        return [
            f"{name}: state lost{when}; deploy, plan and destroy refuse this stage until it is fixed:",
            *state.reasons,
        ]
    head = f"{name}: {state.state}{when}; changed since the last apply:"
    return [head, *(f"  {r}" for r in state.reasons)]


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
