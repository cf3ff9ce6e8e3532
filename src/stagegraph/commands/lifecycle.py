"""Commands over a platform's life: config upgrades, snapshots and restore, backups,
phased major-version migrations (`stagegraph.upgrade`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stagegraph.tasks import printing

if TYPE_CHECKING:
    from stagegraph.tasks import Session

TaskDict = dict[str, Any]


def upgrade(s: Session) -> TaskDict:
    """Bring the config to this release's format (backup, diff; --decide, --confirm, --list)."""
    from stagegraph.upgrade.commands import UPGRADE_PARAMS, upgrade

    return {
        "basename": "upgrade",
        "actions": [(printing(upgrade), [s])],
        "params": UPGRADE_PARAMS,
        "verbosity": 2,
    }


def restore(s: Session) -> TaskDict:
    """Put a stage's Terraform state and record back to a snapshot: doit restore STAGE."""
    from stagegraph.upgrade.commands import RESTORE_PARAMS, restore

    return {
        "basename": "restore",
        "actions": [(printing(restore, loaded=True), [s])],
        "params": RESTORE_PARAMS,
        "pos_arg": "stages",
        "verbosity": 2,
    }


def snapshots(s: Session) -> TaskDict:
    """List the snapshots taken before each apply, per stage."""
    from stagegraph.upgrade.commands import snapshots

    return {"basename": "snapshots", "actions": [(printing(snapshots), [s])], "verbosity": 2}


def migrations(s: Session) -> TaskDict:
    """Phased major-version migrations: where each version runs, and what to tell users."""
    from stagegraph.upgrade.commands import migrations

    return {"basename": "migrations", "actions": [(printing(migrations, loaded=True), [s])], "verbosity": 2}


def backup(s: Session) -> TaskDict:
    """Back up Keycloak, conda-store and shared storage: a CronJob on the cluster (--now: run one)."""
    from stagegraph.upgrade.commands import BACKUP_PARAMS, backup

    return {
        "basename": "backup",
        "actions": [(printing(backup, loaded=True), [s])],
        "params": BACKUP_PARAMS,
        "verbosity": 2,
    }


MOVE_STATE_PARAMS: list[dict[str, Any]] = [
    {
        "name": "dry_run",
        "long": "dry-run",
        "default": False,
        "type": bool,
        "help": "say what would move, change nothing",
    }
]


def move_state(s: Session) -> TaskDict:
    """Move the Terraform state and records to where terraform_state now says (--dry-run)."""
    return {
        "basename": "move_state",
        "actions": [(printing(_move_state, loaded=True), [s])],
        "params": MOVE_STATE_PARAMS,
        "verbosity": 2,
    }


def _move_state(s: Session, dry_run: bool) -> str:
    from stagegraph.statemove import move_state as move

    s.check_config()
    if not dry_run:
        s.hold_lock("move_state")  # this deployment's lock, and the target store's
    project = s.project

    def apply_layout() -> None:
        # 01-terraform-state renders the layout: after a move it is the one stage to apply.
        from stagegraph.deploy import apply_stage
        from stagegraph.render import STATE_STAGE

        record = project.records.get(STATE_STAGE) if STATE_STAGE in s.graph else None
        if record is not None and record.status == "applied":
            apply_stage(s.runtime(), STATE_STAGE)

    return move(project, dry_run=dry_run, lock=not dry_run, apply_layout=apply_layout)
