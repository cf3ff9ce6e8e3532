"""Destroy one stage, after everything that depends on it was destroyed.

Before a destroy run touches anything, `check_destroyable` reads every stage it will
destroy: a problem found only when the run reaches a stage (a lost state, a render that is
gone or edited) would stop it half way, with the stages after it destroyed and the ones
before it not, which is the hardest place to repair from.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from stagegraph.driver import StageContext
from stagegraph.errors import DeployError, StagegraphError
from stagegraph.render import BACKEND_FILE, MANIFEST, file_digest, read_manifest

if TYPE_CHECKING:
    from stagegraph.project import Project
    from stagegraph.records import StageRecord

from stagegraph.deploy import Runtime, driver_of, now, record_failure, stage_context
from stagegraph.inputs import secret_env, stage_inputs
from stagegraph.tfstate import StateError, check_state


def is_destroyed(project: Project, name: str) -> bool:
    """Nothing left to destroy: no record, destroyed, or only ever planned (no state)."""
    return nothing_left(project, name, project.records.get(name))


def nothing_left(project: Project, name: str, record: StageRecord | None) -> bool:
    """`is_destroyed` for a record already read (a shared store's read is a request)."""
    if record is None or record.status == "destroyed":
        return True
    # A first apply that failed half way may have created resources: destroy those too.
    # Drivers leave state behind: Terraform's tfstate, the manifest driver's inventory, or
    # the backend's state, which this machine cannot see without asking Terraform.
    stage = project.graph[name]
    stage_dir = project.stage_dir(stage)
    left = (
        any(stage_dir.glob("terraform.tfstate"))
        or (stage_dir / ".stagegraph-applied.json").exists()
        or (stage_dir / BACKEND_FILE).exists()
    )
    return record.applied_at is None and not left


def check_destroyable(project: Project, names: Iterable[str]) -> None:
    """Refuse (a `DeployError` naming the stage and what to do) before any stage is destroyed.

    For each stage of `names` with something to destroy: its state is the recorded one
    (`check_state`), its render is on disk as it was rendered or last applied (Terraform
    destroys with the files in the folder; with none it destroys nothing and says so
    happily), and its variables can be assembled from the records upstream.
    """
    for name in names:
        record = project.records.get(name)
        if nothing_left(project, name, record):
            continue
        stage = project.graph[name]
        stage_dir = project.stage_dir(stage)
        check_state(name, stage_dir, record.state if record else None)
        _check_render(project, name)
        stage_inputs(project, stage, files="none")


def _check_render(project: Project, name: str) -> None:
    stage_dir = project.stage_dir(project.graph[name])
    manifest = read_manifest(stage_dir)
    if manifest is None:
        raise DeployError(
            f"{stage_dir / MANIFEST}: stage {name} is applied but its render is gone, so a destroy "
            f"would leave its resources behind; run `doit render` to write it again, then destroy"
        )
    record = project.records.get(name)
    applied = record.inputs if record else {}
    for file, rendered in sorted((manifest.get("files") or {}).items()):
        path = stage_dir / file
        try:
            now = file_digest(path.read_bytes())
        except OSError:
            now = None
        if now is None or now not in (rendered, applied.get(f"file:{file}")):
            what = "is missing" if now is None else "differs from both its last render and its last apply"
            raise DeployError(
                f"{path}: {what} (stage {name}); run `doit render` to write the render again, or "
                f"apply your edit first (`doit deploy --disable-render`), then destroy"
            )


def destroy_stage(rt: Runtime, name: str, *, delete_data: bool = False) -> None:
    """Destroy one stage; the engine destroyed its dependents before it.

    The volumes its StatefulSets leave are named in the run's notes, or deleted with
    `delete_data` (`stagegraph.keptvolumes`).
    """
    from stagegraph.sharedstate import refuse_if_lost

    try:
        refuse_if_lost()  # a run that lost the lock writes nothing more: another may be deploying
    except StagegraphError:
        rt.summary.add(name, "failed", 0.0, "not started: the shared lock was lost")
        raise
    project = rt.project
    stage = project.graph[name]
    record = project.records.get(name)
    if record is None or nothing_left(project, name, record):
        rt.summary.add(name, "skipped", 0.0, "nothing to destroy")
        return
    started, t0 = now(), time.monotonic()
    rt.console.start(name)
    ctx: StageContext | None = None
    try:
        # Checked before the run too (`check_destroyable`); again here, as the state is
        # what a destroy must not get wrong.
        # A missing or foreign state would make Terraform destroy nothing and report success.
        check_state(name, project.stage_dir(stage), record.state)
        from stagegraph.sharedstate.bootstrap import after_destroy, before_destroy

        before_destroy(rt, name)  # 01 on a cloud deletes the store the records are in
        inputs = stage_inputs(project, stage, files="none")
        env, _ = secret_env(project, stage)
        ctx = stage_context(rt, stage, "destroy", inputs.variables, env, record)
        driver_of(stage).destroy(ctx)
    except StateError as exc:
        # Refused before anything ran: the record stays as it is (still "state lost").
        rt.summary.add(name, "failed", 0.0, str(exc))
        raise
    except StagegraphError as exc:
        record_failure(
            rt,
            stage,
            started,
            time.monotonic() - t0,
            exc,
            ctx.log_path if ctx else None,
            prefix="destroy failed: ",
        )
        raise
    duration = time.monotonic() - t0
    project.records.record_destroyed(
        name, attempted_at=started, duration_s=duration, log=ctx.log_path if ctx else None
    )
    after_destroy(project, name)
    rt.summary.add(name, "destroyed", duration, "")
    rt.console.finish(name, "destroyed", duration)
    _left_volumes(rt, name, delete_data)


def _left_volumes(rt: Runtime, name: str, delete_data: bool) -> None:
    from stagegraph.keptvolumes import after_destroy

    try:
        note = after_destroy(rt.project, name, delete_data)
    except StagegraphError as exc:
        rt.summary.note(f"{name}: destroyed, but its volumes were not deleted: {exc}")
        raise
    if note:
        rt.summary.note(note)
