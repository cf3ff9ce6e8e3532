"""Destroy one stage, after everything that depends on it was destroyed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from stagegraph.driver import StageContext
from stagegraph.errors import StagegraphError

if TYPE_CHECKING:
    from stagegraph.project import Project

from stagegraph.deploy import Runtime, driver_of, now, record_failure, stage_context
from stagegraph.inputs import secret_env, stage_inputs
from stagegraph.tfstate import StateError, check_state


def is_destroyed(project: Project, name: str) -> bool:
    """Nothing left to destroy: no record, destroyed, or only ever planned (no state)."""
    record = project.records.get(name)
    if record is None or record.status == "destroyed":
        return True
    # A first apply that failed half way may have created resources: destroy those too.
    # Drivers leave state behind: Terraform's tfstate, the manifest driver's inventory.
    stage_dir = project.stage_dir(project.graph[name])
    left = any(stage_dir.glob("terraform.tfstate")) or (stage_dir / ".stagegraph-applied.json").exists()
    return record.applied_at is None and not left


def destroy_stage(rt: Runtime, name: str) -> None:
    """Destroy one stage; the engine destroyed its dependents before it."""
    from stagegraph.sharedstate import refuse_if_lost

    try:
        refuse_if_lost()  # a run that lost the lock writes nothing more: another may be deploying
    except StagegraphError:
        rt.summary.add(name, "failed", 0.0, "not started: the shared lock was lost")
        raise
    project = rt.project
    stage = project.graph[name]
    record = project.records.get(name)
    if record is None or is_destroyed(project, name):
        rt.summary.add(name, "skipped", 0.0, "nothing to destroy")
        return
    started, t0 = now(), time.monotonic()
    rt.console.start(name)
    ctx: StageContext | None = None
    try:
        # A missing or foreign state would make Terraform destroy nothing and report success.
        check_state(name, project.stage_dir(stage), record.state)
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
    rt.summary.add(name, "destroyed", duration, "")
    rt.console.finish(name, "destroyed", duration)
