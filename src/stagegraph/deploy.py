"""Apply one stage (plans: `stagegraph.planning`; destroy: `stagegraph.destroy`; state: `stagegraph.status`).

The record store (`stagegraph.records`) is the source of truth, not doit's database: a stage
is up to date when the fingerprint of its current inputs equals the fingerprint of its last
successful apply. The record is written atomically right after the apply succeeds, so a
run killed at any point loses at most the stage that was running, which then re-applies.
How a stage is applied is its driver's business (`stagegraph.driver`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from stagegraph.driver import TERRAFORM, StageContext, StageDriver
from stagegraph.errors import DeployError, StagegraphError
from stagegraph.fingerprint import changed_inputs
from stagegraph.immutable import immutable_values
from stagegraph.inputs import secret_env, stage_inputs, upstream_outputs
from stagegraph.records import StageRecord
from stagegraph.stage import CheckContext, Stage, Upstream
from stagegraph.tfprocess import ShuttingDownError, stopping
from stagegraph.tfstate import StateError, check_state, identity_after_apply

if TYPE_CHECKING:
    from stagegraph.console import Console
    from stagegraph.project import Project
    from stagegraph.summary import RunSummary
    from stagegraph.terraform import TerraformBinary
    from stagegraph.tfplan import PlanSummary


@dataclass
class Runtime:
    """What the actions of one doit run share."""

    project: Project
    console: Console
    summary: RunSummary
    terraform: TerraformBinary | None = None
    #: What each stage's plan in this run changes and outputs, for the stages after it.
    plans: dict[str, PlanSummary | None] = field(default_factory=dict)

    def binary(self) -> TerraformBinary:
        if self.terraform is None:
            from stagegraph.terraform import find_terraform

            self.terraform = find_terraform(self.project.config.stagegraph.terraform.binary)
        return self.terraform


def driver_of(stage: Stage) -> StageDriver:
    return stage.driver if stage.driver is not None else TERRAFORM


# --- apply --------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def _log_path(project: Project, name: str, action: str) -> Path:
    logs = project.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / f"{name}.{action}.log"


#: Terraform lines worth showing on the console; everything goes to the stage's log file.
_PROGRESS = (
    ": Creating",
    ": Creation complete",
    ": Modifying",
    ": Modifications complete",
    ": Destroying",
    ": Destruction complete",
    ": Still ",
    "Plan:",
    "Apply complete",
    "Destroy complete",
    "Error",
    "No changes",
)


def _progress_filter(write: Callable[[str], None]) -> Callable[[str], None]:
    """Show resource progress and results; STAGEGRAPH_VERBOSE=1 shows every line."""
    if os.environ.get("STAGEGRAPH_VERBOSE"):
        return write

    def show(line: str) -> None:
        # Once a signal stopped the run, Terraform's "interrupted" errors stay in the log.
        if any(marker in line for marker in _PROGRESS) and not stopping():
            write(line.strip())

    return show


def stage_context(
    rt: Runtime,
    stage: Stage,
    action: str,
    variables: dict[str, Any],
    env: Mapping[str, str],
    record: StageRecord | None,
) -> StageContext:
    from stagegraph.console import LineWriter
    from stagegraph.sharedstate import backend_env

    writer = LineWriter(rt.console, stage.name)
    env = {**backend_env(rt.project, stage.name), **env}
    return StageContext(
        stage=stage,
        stage_dir=rt.project.stage_dir(stage),
        provider=rt.project.config.provider,
        variables=variables,
        secret_env=env,
        record=record,
        log_path=_log_path(rt.project, stage.name, action),
        line=_progress_filter(writer.write_line),
        terraform_binary=rt.binary,
        rehearse=rt.project.config.stagegraph.rehearse,
    )


def _validated_outputs(stage: Stage, raw: Mapping[str, Any]) -> BaseModel:
    try:
        return stage.outputs.model_validate({k: v for k, v in raw.items() if k in stage.outputs.model_fields})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise DeployError(
            f"stage {stage.name}: output {where!r} does not match "
            f"{stage.outputs.__name__}: {err['msg']}; the stage's outputs and its model disagree"
        ) from None


def _run_check(rt: Runtime, stage: Stage, outputs: BaseModel) -> None:
    """The stage's own check after it applied (skipped offline: sandbox or rehearsal)."""
    if stage.check is None or rt.project.config.offline:
        return
    upstream, _ = upstream_outputs(rt.project, stage)
    ctx = CheckContext(
        stage=stage.name,
        provider=rt.project.config.provider,
        upstream=Upstream(stage.name, upstream),
        outputs=outputs,
        line=lambda text: rt.console.line(stage.name, text),
    )
    try:
        stage.check(ctx)
    except StagegraphError as exc:
        raise DeployError(f"stage {stage.name}: check failed after apply: {exc}") from None


def _run_preflight(rt: Runtime, stage: Stage) -> None:
    """The stage's preflight before it applies (the cluster's Kubernetes version); not in the sandbox."""
    if stage.preflight is None or rt.project.config.offline:
        return
    from stagegraph.stage import NoOutputs
    from stagegraph.views import PinView

    upstream, _ = upstream_outputs(rt.project, stage)
    lock = rt.project.lock
    ctx = CheckContext(
        stage=stage.name,
        provider=rt.project.config.provider,
        upstream=Upstream(stage.name, upstream),
        outputs=NoOutputs(),
        line=lambda text: rt.console.line(stage.name, text),
        pins=PinView(lock, lock.keys(), stage.name, rt.project.lockfile_name),
    )
    try:
        stage.preflight(ctx)
    except StagegraphError as exc:
        raise DeployError(f"stage {stage.name}: preflight failed, nothing applied: {exc}") from None


def apply_stage(rt: Runtime, name: str) -> None:
    """Apply one stage if its inputs changed since its last successful apply."""
    from stagegraph.sharedstate import refuse_if_lost

    try:
        refuse_if_lost()  # a run that lost the lock writes nothing more: another may be deploying
    except StagegraphError:
        rt.summary.add(name, "failed", 0.0, "not started: the shared lock was lost")
        raise
    project = rt.project
    stage = project.graph[name]
    stage_dir = project.stage_dir(stage)
    record = project.records.get(name)
    started = now()
    t0 = time.monotonic()
    ctx: StageContext | None = None
    try:
        now_inputs = stage_inputs(project, stage)
        inputs, fp = now_inputs.inputs, now_inputs.fingerprint
        actions_due = has_upgrade_actions(project, name)
        older_state = check_state(name, stage_dir, record.state if record else None)
        fresh = record is not None and record.status == "applied" and record.fingerprint == fp
        if fresh and not older_state and not actions_due:
            # doit's database can be lost (SIGKILL); our record still says done.
            rt.summary.add(name, "skipped", 0.0, "up to date")
            rt.console.line(name, "up to date")
            return
        rt.console.start(name)
        env, _ = secret_env(project, stage)
        ctx = stage_context(rt, stage, "apply", now_inputs.variables, env, record)
        _run_preflight(rt, stage)
        run_upgrade_actions(rt, stage, "before")
        take_snapshot(rt, stage, record)
        result = driver_of(stage).apply(ctx)
        outputs = _validated_outputs(stage, result.outputs)
        _run_check(rt, stage, outputs)
    except StateError as exc:
        # Refused before anything ran: the record stays as it is (still "state lost").
        rt.summary.add(name, "failed", 0.0, str(exc))
        raise
    except ShuttingDownError:
        raise  # not started: the run is stopping; the next deploy applies it
    except StagegraphError as exc:
        record_failure(rt, stage, started, time.monotonic() - t0, exc, ctx.log_path if ctx else None)
        raise
    duration = time.monotonic() - t0
    project.records.record_success(
        name,
        fingerprint=fp,
        inputs=inputs,
        outputs=outputs.model_dump(mode="json"),
        attempted_at=started,
        duration_s=duration,
        log=ctx.log_path,
        runner=result.runner,
        init_digest=result.init_digest,
        immutable=immutable_values(project.config),
        state=identity_after_apply(stage_dir),
        source=stage.source,
    )
    reason = "; ".join(changed_inputs(record.inputs, inputs)[:3]) if record else "first apply"
    run_upgrade_actions(rt, stage, "after")
    rt.summary.add(name, "applied", duration, reason or "upgrade actions")
    rt.console.finish(name, "applied", duration)
    from stagegraph.sharedstate.bootstrap import after_apply

    after_apply(rt, name)  # 01 on a cloud: records, lock and its state into the store it made


def has_upgrade_actions(project: Project, name: str) -> bool:
    """Whether `doit upgrade` left an action for this stage that has not run yet."""
    from stagegraph.upgrade.deploy_actions import pending

    return bool(pending(project.state_dir, name))


def run_upgrade_actions(rt: Runtime, stage: Stage, when: str) -> None:
    """The upgrade's recorded actions for this stage and moment (`stagegraph.upgrade.deploy_actions`)."""
    from stagegraph.upgrade.deploy_actions import kube_deleter, pending, run

    project = rt.project
    if not pending(project.state_dir, stage.name, when):
        return
    infra = project.records.get("02-infrastructure")
    kubeconfig = infra.outputs.get("kubeconfig_path") if infra is not None else None
    delete = (
        kube_deleter(str(kubeconfig), infra.outputs.get("kube_context")) if infra and kubeconfig else None
    )
    run(
        project.state_dir,
        stage.name,
        when,
        sandbox=project.config.provider == "sandbox",
        delete=delete,
        state_file=project.stage_dir(stage) / "terraform.tfstate",
        line=lambda text: rt.console.line(stage.name, text),
    )


def take_snapshot(rt: Runtime, stage: Stage, record: StageRecord | None) -> None:
    """Keep the stage's state and record as they are before this apply (`doit restore`)."""
    from stagegraph.snapshots import snapshot_stage

    project = rt.project
    snapshot_stage(
        project.state_dir,
        stage.name,
        project.stage_dir(stage),
        record,
        keep=project.config.stagegraph.snapshots.keep,
    )


def record_failure(
    rt: Runtime,
    stage: Stage,
    started: datetime,
    duration: float,
    exc: StagegraphError,
    log: Path | None,
    prefix: str = "",
) -> None:
    """Record the failure (keeping the last success's fingerprint), summarise, show the tail."""
    message = prefix + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    rt.project.records.record_failure(stage.name, message, log, attempted_at=started, duration_s=duration)
    rt.summary.add(stage.name, "failed", duration, message)
    if not stopping():  # interrupted by a signal: its one line is all the user needs
        rt.console.show_failure(stage.name, message, list(getattr(exc, "tail", []) or []), log)
