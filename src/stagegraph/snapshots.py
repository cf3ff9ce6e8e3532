"""Snapshots of a stage's Terraform state and deploy record, taken before each apply.

Before a stage applies, its local state files (`terraform.tfstate*` in the stage
directory, where stagegraph keeps state for every provider it renders) and its record are
copied to `.stagegraph/snapshots/<stage>/<id>/`; the newest `stagegraph.snapshots.keep`
are kept. `doit restore STAGE [--snapshot ID]` copies them back, after snapshotting what it
replaces, so a restore can itself be undone. Snapshots hold state, which may hold secrets:
files and folders are owner-only, like the state itself.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stagegraph.errors import StagegraphError

if TYPE_CHECKING:
    from stagegraph.records import StageRecord

SNAPSHOTS_DIR = "snapshots"
RECORD_FILE = "record.json"
META_FILE = "snapshot.json"


class SnapshotError(StagegraphError):
    """A snapshot cannot be taken, found or restored."""


@dataclass(frozen=True)
class Snapshot:
    id: str
    stage: str
    path: Path
    taken_at: str
    reason: str
    state_files: tuple[str, ...]
    had_record: bool


def _stage_root(state_dir: Path, stage: str) -> Path:
    return state_dir / SNAPSHOTS_DIR / stage


def _state_files(stage_dir: Path) -> list[Path]:
    return sorted(p for p in stage_dir.glob("terraform.tfstate*") if p.is_file())


def _new_id(root: Path) -> str:
    base = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    candidate, n = base, 1
    while (root / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def snapshot_stage(
    state_dir: Path,
    stage: str,
    stage_dir: Path,
    record: StageRecord | None,
    *,
    keep: int,
    reason: str = "before apply",
) -> Snapshot | None:
    """Copy the stage's state and record aside; None when disabled or nothing to keep."""
    files = _state_files(stage_dir)
    if keep <= 0 or (record is None and not files):
        return None
    root = _stage_root(state_dir, stage)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    snap = root / _new_id(root)
    tmp = snap.with_name(snap.name + ".tmp")
    tmp.mkdir(mode=0o700)
    for path in files:
        shutil.copy2(path, tmp / path.name)
        (tmp / path.name).chmod(0o600)
    if record is not None:
        (tmp / RECORD_FILE).write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
        (tmp / RECORD_FILE).chmod(0o600)
    meta = {
        "id": snap.name,
        "stage": stage,
        "taken_at": datetime.now(UTC).isoformat(),
        "reason": reason,
        "state_files": [p.name for p in files],
        "had_record": record is not None,
    }
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    tmp.rename(snap)  # a snapshot folder is complete or absent
    for old in list_snapshots(state_dir, stage)[keep:]:
        shutil.rmtree(old.path, ignore_errors=True)
    return _read(snap)


def _read(path: Path) -> Snapshot:
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        return Snapshot(
            id=str(meta["id"]),
            stage=str(meta["stage"]),
            path=path,
            taken_at=str(meta["taken_at"]),
            reason=str(meta.get("reason", "")),
            state_files=tuple(meta["state_files"]),
            had_record=bool(meta["had_record"]),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise SnapshotError(
            f"{path}: unreadable snapshot ({type(exc).__name__}); delete the folder"
        ) from None


def list_snapshots(state_dir: Path, stage: str) -> list[Snapshot]:
    """The stage's snapshots, newest first."""
    root = _stage_root(state_dir, stage)
    if not root.is_dir():
        return []
    found = [_read(p) for p in root.iterdir() if p.is_dir() and not p.name.endswith(".tmp")]
    return sorted(found, key=lambda s: s.id, reverse=True)


def restore_stage(
    state_dir: Path,
    stage: str,
    stage_dir: Path,
    snapshot_id: str | None,
    *,
    keep: int,
) -> tuple[Snapshot, Snapshot | None]:
    """Put the stage's state and record back to a snapshot (the newest by default).

    Returns the snapshot restored and the one taken of what it replaced.
    """
    from stagegraph.atomic import write_atomic
    from stagegraph.records import RecordStore, StageRecord

    snaps = list_snapshots(state_dir, stage)
    if not snaps:
        raise SnapshotError(f"stage {stage} has no snapshot (one is taken before each apply)")
    chosen = snaps[0] if not snapshot_id else next((s for s in snaps if s.id == snapshot_id), None)
    if chosen is None:
        raise SnapshotError(
            f"stage {stage} has no snapshot {snapshot_id!r}; known: {', '.join(s.id for s in snaps)}"
        )
    if not chosen.state_files and _state_files(stage_dir):
        raise SnapshotError(
            f"snapshot {chosen.id} of stage {stage} was taken before the stage had any state; "
            f"restoring it would forget what Terraform created: use `doit destroy:{stage}` instead"
        )
    records = RecordStore(state_dir)
    current = records.get(stage)
    undo = snapshot_stage(
        state_dir, stage, stage_dir, current, keep=max(keep, 1) + 1, reason=f"before restore of {chosen.id}"
    )
    stage_dir.mkdir(parents=True, exist_ok=True)
    for path in _state_files(stage_dir):
        if path.name not in chosen.state_files:
            path.unlink()
    for name in chosen.state_files:
        write_atomic(stage_dir / name, (chosen.path / name).read_bytes(), 0o600)
    if chosen.had_record:
        records.put(StageRecord.model_validate_json((chosen.path / RECORD_FILE).read_bytes()))
    else:
        records.delete(stage)
    return chosen, undo
