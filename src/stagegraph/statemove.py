"""`doit move_state`: move every stage's Terraform state and its record to where the config says.

The move runs in steps, each safe to repeat, under a journal (`.stagegraph/state-move.json`)
that every other command refuses to run beside:

1. check, under the locks of both places, that nothing is half-applied (a failed stage, a
   saved plan, an orphan, a hand-edited render, a state that is not its record's, another
   deployment's state or records at the target); refused in one line, nothing changed;
2. snapshot each stage's state and record (`doit restore` can put them back);
3. render with the new config and copy each state, then read it back at the target and
   compare with the source: same lineage, same resources and outputs, a serial at least the
   source's;
4. write the records at the target, then the location file (the switch);
5. retire the source: local files are moved into `.stagegraph/state-moved/<when>/`, never
   deleted; a shared store's state objects and records are moved under `retired/<when>/` in
   its folder, and a `moved.json` there names where the state went, so a clone still
   pointing at it is refused;
6. apply 01-terraform-state, whose render records the layout (the visible, applied change).

Why `terraform state pull` / `state push` in a folder holding only the backend block, rather
than `terraform init -migrate-state -force-copy` in each stage: no providers are installed
(offline, seconds), the stage folders are never half-migrated, and a plain push refuses to
overwrite a state of another lineage, where `-force-copy` answers yes to overwriting whatever
the target holds. Terraform 1.11's S3 backend gives a state pushed into an empty key a new
lineage (so does `-migrate-state`); the move then pushes again with `-force` over the copy it
has just made, which restores the lineage at the cost of one serial. Local targets are
written byte for byte.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagegraph.errors import DeployError
from stagegraph.statecopy import MoveRefusedError, Side, TfState
from stagegraph.statelocation import (
    JOURNAL_FILE,
    MARKER_OBJECT,
    MoveJournal,
    StateLocation,
    configured_location,
    current_location,
    read_journal,
    write_journal,
    write_location,
)
from stagegraph.stateretire import MOVED_DIR, RETIRED, retire
from stagegraph.tfstate import STATE_FILE

if TYPE_CHECKING:
    from stagegraph.project import Project
    from stagegraph.records import StageRecord
    from stagegraph.stage import Stage

#: The only rendered file a move changes in a stage other than 01: the backend block.
_BACKEND_INPUTS = {"file:backend.tf.json"}


def _now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass
class StageMove:
    stage: Stage
    record: StageRecord
    source_state: TfState | None
    keeps_state: bool


@dataclass
class Move:
    project: Project
    source: Side
    target: Side
    journal: MoveJournal
    resumed: bool
    stages: list[StageMove] = field(default_factory=list)


def _source_config(project: Project, where: StateLocation) -> Any:
    from stagegraph.schema.bootstrap import TerraformState

    current = project.config.terraform_state
    kind = "existing" if where.kind == "existing" else "local"
    state = TerraformState.model_validate(
        {
            "type": kind,
            **({"backend": where.backend, "config": dict(where.settings)} if kind == "existing" else {}),
            "lock_lease_s": current.lock_lease_s,
            "lock_wait_s": current.lock_wait_s,
        }
    )
    return project.config.model_copy(update={"terraform_state": state})


def _locations(project: Project) -> tuple[StateLocation, StateLocation, MoveJournal | None]:
    target = configured_location(project.config)
    journal = read_journal(project.state_dir)
    if journal is not None:
        if journal.target.place() != target.place():
            stay = (
                ""
                if journal.switched
                else f", or to keep the state in {journal.source.describe()} delete "
                f"{project.state_dir / JOURNAL_FILE} (nothing was retired yet)"
            )
            raise MoveRefusedError(
                f"{project.config_name}: a move to {journal.target.describe()} was interrupted; set "
                f"terraform_state back to it and run `doit move_state` again{stay}"
            )
        return journal.source, target, journal
    return current_location(project), target, None


def prepare(project: Project, stack: ExitStack, *, lock: bool) -> Move | None:
    """Check everything and read every source state; None when the state is where the config says."""
    from stagegraph.terraform import find_terraform

    if project.config.stagegraph.rehearse:
        raise MoveRefusedError(
            f"{project.config_name}: stagegraph.rehearse: a rehearsal keeps its state on this machine; "
            "nothing to move"
        )
    source, target, journal = _locations(project)
    if journal is None and source.place() == target.place():
        return None
    for side in (source, target):
        if side.kind == "remote":
            raise MoveRefusedError(
                f"{project.config_name}: terraform_state.type remote ({side.describe()}) is not moved by "
                "`doit move_state`, which moves between local state and a backend named with type "
                "existing: use one of those"
            )
    source_view = project.with_config(_source_config(project, source))
    if lock:
        _hold_store_lock(source_view)
    binary = find_terraform(project.config.stagegraph.terraform.binary)
    move = Move(
        project=project,
        source=Side(source_view, source, binary, stack),
        target=Side(project, target, binary, stack),
        journal=journal or MoveJournal(source=source, target=target, stamp=_now_stamp()),
        resumed=journal is not None,
    )
    if move.journal.switched:
        return move  # the records are at the target already: only retiring is left
    _check_source(move)
    _check_target(move)
    return move


def _hold_store_lock(view: Project) -> None:
    """The shared lock of the source's store (the target's is the run's own, `Session.hold_lock`)."""
    store = view.shared_store
    if store is not None:
        from stagegraph.sharedstate import Lease, hold_shared_lock

        state = view.config.terraform_state
        hold_shared_lock(store, "move_state", Lease(state.lock_lease_s, state.lock_wait_s))


def _keeps_state(move: Move, stage: Stage) -> bool:
    """Whether the stage has Terraform state (not every stage does: a manifest stage on a cluster)."""
    remote = move.target if move.source.where.is_local else move.source
    return remote.backend(stage) is not None


def _check_source(move: Move) -> None:
    from stagegraph.immutable import check_unchanged
    from stagegraph.orphans import refuse_orphans
    from stagegraph.render import hand_edits
    from stagegraph.tfstate import check_state

    project, view = move.project, move.source.view
    records = view.records.all()  # an unreadable record refuses the move
    refuse_orphans(view, project.graph.names)
    check_unchanged(project.config, records, ["terraform_state.type"], project.config_name)
    where = move.source.where.describe()
    for stage in project.graph.stages:
        record = records.get(stage.name)
        if record is None:
            continue
        if record.status == "failed":
            raise MoveRefusedError(
                f"stage {stage.name}: its last apply failed ({record.error}); deploy until it succeeds "
                "(or destroy it), then move the state"
            )
        if record.plan is not None:
            raise MoveRefusedError(
                f"stage {stage.name}: a saved plan is pending ({record.plan.path}); apply it with "
                "`doit apply_plan` or deploy, then move the state"
            )
        edited = hand_edits(project.stage_dir(stage))
        if edited and record.status == "applied":
            raise MoveRefusedError(
                f"{project.stage_dir(stage)}: {', '.join(edited)} edited by hand since the last render; "
                "deploy (or render) first, so that what is moved is what the files say"
            )
        keeps = _keeps_state(move, stage)
        state = move.source.read(stage) if keeps or move.source.where.is_local else None
        if move.source.where.is_local and record.status == "applied":
            older = check_state(stage.name, project.stage_dir(stage), record.state)
            if older:
                raise MoveRefusedError(f"stage {stage.name}: {older}; deploy first, then move the state")
        if record.status == "applied" and keeps and state is None:
            raise MoveRefusedError(
                f"stage {stage.name} is applied but {where} holds no Terraform state for it; restore "
                f"it, or `doit forget_state {stage.name}`"
            )
        recorded = record.state if record.status == "applied" else None
        if (
            state is not None
            and recorded is not None
            and (state.lineage != recorded.lineage or state.serial < recorded.serial)
        ):
            raise MoveRefusedError(
                f"stage {stage.name}: the state in {where} ({state.short()}) is not the one its record "
                f"names (lineage {recorded.lineage[:8]}, serial {recorded.serial}); restore "
                f"it, or `doit forget_state {stage.name}`"
            )
        move.stages.append(StageMove(stage, record, state, keeps and state is not None))


def _check_target(move: Move) -> None:
    where = move.target.where.describe()
    ours = {m.stage.name for m in move.stages}
    found, problems = move.target.view.records.scan()
    there = sorted({*found, *problems})
    foreign = [name for name in there if name not in ours or not move.resumed]
    if foreign:
        raise MoveRefusedError(
            f"{where} already holds deploy records ({', '.join(foreign[:3])}); another deployment "
            "uses it: give this one a folder (key) of its own"
        )
    for m in move.stages:
        if not m.keeps_state or m.source_state is None:
            continue
        have = move.target.read(m.stage)
        src = m.source_state
        if have is None or (have.lineage == src.lineage and have.serial <= src.serial):
            continue
        if have.lineage == src.lineage and have.content == src.content:
            continue  # copied by an earlier run (a push raises the serial by one)
        if have.content == src.content and move.resumed:
            continue  # an earlier run's copy that the backend gave a new lineage
        raise MoveRefusedError(
            f"{where} already holds a Terraform state for {m.stage.name} ({have.short()}; moving "
            f"{src.short()}); another deployment uses it: give this one a folder (key) of its own"
        )


def dry_run_lines(move: Move) -> list[str]:
    source, target = move.source.where.describe(), move.target.where.describe()
    lines = [f"move_state --dry-run: would move from {source} to {target}:"]
    for m in move.stages:
        what = (
            f"state ({m.source_state.short()}) and record" if m.keeps_state and m.source_state else "record"
        )
        lines.append(f"  {m.stage.name}: {what} ({m.record.status})")
    lines.append(f"then retire {source} ({_retire_note(move)}); nothing was changed")
    return lines


def _retire_note(move: Move) -> str:
    if move.source.where.is_local:
        return f"files moved into {move.project.state_dir / MOVED_DIR}/<when>/"
    return f"objects moved under {RETIRED}/<when>/ there, with a {MARKER_OBJECT} naming the new place"


# --- the move itself ------------------------------------------------------------------------------


def run(move: Move, apply_layout: Any) -> list[str]:
    """Steps 2-6 (see the module docstring); `apply_layout()` applies 01 when it is stale."""
    project = move.project
    lines: list[str] = []
    if not move.journal.switched:
        _snapshot(move)
        write_journal(project.state_dir, move.journal)
        _render(project)
        for m in move.stages:
            lines.append(_copy(move, m))
        _write_records(move)
        write_location(project.state_dir, move.target.where)
        move.journal = move.journal.model_copy(update={"switched": True})
        write_journal(project.state_dir, move.journal)
    lines += retire(move)
    apply_layout()
    (project.state_dir / JOURNAL_FILE).unlink(missing_ok=True)
    done = "finished the interrupted move" if move.resumed else f"moved {len(move.stages)} stage(s)"
    lines.append(f"move_state: {done} from {move.source.where.describe()} to {move.target.where.describe()}")
    return lines


def _snapshot(move: Move) -> None:
    from stagegraph.snapshots import snapshot_stage

    project = move.project
    keep = max(project.config.stagegraph.snapshots.keep, 1)
    reason = f"before move_state to {move.target.where.describe()}"
    for m in move.stages:
        if move.source.where.is_local or m.source_state is None:
            snapshot_stage(
                project.state_dir,
                m.stage.name,
                project.stage_dir(m.stage),
                m.record,
                keep=keep,
                reason=reason,
            )
            continue
        with tempfile.TemporaryDirectory(prefix="stagegraph-snap-") as tmp:
            (Path(tmp) / STATE_FILE).write_bytes(m.source_state.data)
            snapshot_stage(project.state_dir, m.stage.name, Path(tmp), m.record, keep=keep, reason=reason)


def _render(project: Project) -> None:
    from stagegraph.render import render_stage, write_stage

    for stage in project.graph.stages:
        write_stage(
            project.output_root, render_stage(stage, project.config, project.lock, project.lockfile_name)
        )


def _copy(move: Move, m: StageMove) -> str:
    src = m.source_state
    if not m.keeps_state or src is None:
        return f"{m.stage.name}: record only (no Terraform state)"
    got = move.target.write(m.stage, src)
    if got.lineage != src.lineage or got.content != src.content or got.serial < src.serial:
        raise DeployError(
            f"stage {m.stage.name}: the state read back from {move.target.where.describe()} ({got.short()}) "
            f"differs from the source ({src.short()}); nothing was retired, run `doit move_state` again"
        )
    return f"{m.stage.name}: state moved ({src.short()} -> {got.short()}), verified"


def _write_records(move: Move) -> None:
    from stagegraph.fingerprint import FINGERPRINTED
    from stagegraph.inputs import stage_inputs
    from stagegraph.tfstate import read_identity

    project = move.project
    state_type = project.config.terraform_state.type
    for m in move.stages:
        record = m.record
        update: dict[str, Any] = {}
        if "terraform_state.type" in record.immutable:
            update["immutable"] = {**record.immutable, "terraform_state.type": state_type}
        if record.status == "applied" and record.fingerprint is not None:
            now = stage_inputs(move.source.view, m.stage)  # the new render, the recorded upstreams
            changed = {
                k
                for k in {*record.inputs, *now.inputs}
                if k.startswith(FINGERPRINTED) and record.inputs.get(k) != now.inputs.get(k)
            }
            if changed <= _BACKEND_INPUTS:
                # Only the backend block differs, and the move just did what it says.
                update.update(fingerprint=now.fingerprint, inputs=now.inputs)
        if m.keeps_state:
            update["state"] = (
                read_identity(project.stage_dir(m.stage)) if move.target.where.is_local else None
            )
        move.target.view.records.put(record.model_copy(update=update))


@contextmanager
def scratch() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def move_state(project: Project, *, dry_run: bool, lock: bool, apply_layout: Any) -> str:
    """The command: check, then move (or, dry, say what would move)."""
    with scratch() as stack:
        move = prepare(project, stack, lock=lock and not dry_run)
        if move is None:
            where = configured_location(project.config).describe()
            return f"move_state: nothing to move: the state is in {where}, as the config says"
        if dry_run:
            return "\n".join(dry_run_lines(move))
        return "\n".join(run(move, apply_layout))
