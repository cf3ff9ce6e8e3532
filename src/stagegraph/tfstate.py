"""Which Terraform state a stage's record belongs to, and whether it is still there.

A record says "applied"; the resources it describes are tracked by the stage's local
`terraform.tfstate`. If that file is deleted, truncated or swapped for another deployment's,
Terraform no longer knows the live resources: the next apply re-creates them (or collides
with them) and a destroy leaves them behind. So each successful apply records the state's
identity - Terraform's `lineage` (fixed when a state is first created) and `serial`
(incremented on every write) - and status, deploy, plan and destroy check it first.

A state with the recorded lineage and a serial at least the recorded one is fine (a hand
apply in the stage folder, as the README allows, raises the serial). A lower serial is an
older copy, such as the `terraform.tfstate.backup` Terraform keeps: usable, but it misses
the last apply, so the stage counts as stale and the next deploy re-applies it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from stagegraph.errors import DeployError

if TYPE_CHECKING:
    from stagegraph.records import RecordStore

STATE_FILE = "terraform.tfstate"
BACKUP_FILE = "terraform.tfstate.backup"


class StateIdentity(BaseModel):
    """Terraform's own identity of a state file: its lineage and its write counter."""

    model_config = ConfigDict(extra="forbid")

    lineage: str
    serial: int


class StateError(DeployError):
    """The state a stage's record belongs to is missing, unreadable or another one."""


def read_identity(stage_dir: Path) -> StateIdentity | None:
    """The identity of the stage's local state; None when it has none (a remote backend,
    a manifest stage on a cluster). Raises `ValueError`/`OSError` on an unreadable file."""
    path = stage_dir / STATE_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_bytes())
    if not isinstance(data, dict) or not isinstance(data.get("lineage"), str):
        raise ValueError("no lineage")
    serial = data.get("serial")
    if not isinstance(serial, int):
        raise ValueError("no serial")
    return StateIdentity(lineage=data["lineage"], serial=serial)


def identity_after_apply(stage_dir: Path) -> StateIdentity | None:
    """The identity to record after a successful apply; None when there is none to read."""
    try:
        return read_identity(stage_dir)
    except (OSError, ValueError):
        return None


def _ways_on(stage: str, path: Path) -> str:
    backup = path.with_name(BACKUP_FILE)
    restore = (
        f"restore it from git or your backups, or from the copy Terraform keeps (cp {backup} {path})"
        if backup.exists()
        else "restore it from git or your backups"
    )
    return (
        f"{restore}; or accept that the stage's resources are no longer tracked with "
        f"`doit forget_state {stage}` (the next deploy then creates them anew)"
    )


def check_state(stage: str, stage_dir: Path, recorded: StateIdentity | None) -> str | None:
    """Refuse (`StateError`) a state that is missing, unreadable or another deployment's.

    Returns a reason when the state is an older copy of the recorded one (the stage is then
    stale), None when it is the recorded one or newer. Nothing is checked without a
    recorded identity (records written before identities were, remote backends).
    """
    if recorded is None:
        return None
    path = stage_dir / STATE_FILE
    was = f"recorded lineage {recorded.lineage}, serial {recorded.serial}"
    try:
        found = read_identity(stage_dir)
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or "not a Terraform state file"
        raise StateError(
            f"{path}: the Terraform state of stage {stage} is unreadable ({why}; {was}); "
            + _ways_on(stage, path)
        ) from None
    if found is None:
        raise StateError(
            f"{path}: the Terraform state of stage {stage} is missing, but the stage was applied "
            f"({was}); " + _ways_on(stage, path)
        )
    if found.lineage != recorded.lineage:
        raise StateError(
            f"{path}: this is not the Terraform state stage {stage} was applied with (lineage "
            f"{found.lineage}, {was}); " + _ways_on(stage, path)
        )
    if found.serial < recorded.serial:
        return (
            f"{STATE_FILE} is older than the last apply (serial {found.serial}, recorded "
            f"{recorded.serial}; restored from a backup?): the next deploy re-applies"
        )
    return None


def forget_state(records: RecordStore, stage: str, stage_dir: Path) -> str:
    """Accept the loss: drop the stage's record and move a broken state file aside.

    The stage then counts as never applied, and the next deploy creates its resources anew
    (on a real cluster, remove or import what still exists first). A state that is merely
    another lineage or unreadable is kept, renamed, for a post-mortem; nothing is deleted.
    """
    path = stage_dir / STATE_FILE
    moved = ""
    if path.exists():
        aside = path.with_name(f"{STATE_FILE}.forgotten-{time.strftime('%Y%m%dT%H%M%S')}")
        path.replace(aside)
        moved = f"; moved {path} to {aside.name}"
    had = records.delete(stage)
    if not had and not moved:
        return "nothing to forget (no record, no state)"
    return f"forgot its deploy record{moved}; the next deploy applies it as new"
