"""`doit plan` and `doit apply_plan`: plans that flow through the graph, applied strictly.

Stages are planned in runtime order. Each stage is planned against its upstreams'
*planned* outputs where the upstream's plan changes something and Terraform knows the
value, against the recorded outputs where the upstream does not change, and against the
upstream's declared mock outputs only where nothing is applied and nothing is planned.
An output known only after the upstream applies makes the stage "planned after <upstream>
applies" (a deferred change): its plan stands in the recorded value, and `apply_plan`
refuses it, like a plan made against mocks or against inputs that changed since.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from stagegraph.deploy import (
    Runtime,
    _run_check,
    _run_preflight,
    _validated_outputs,
    driver_of,
    now,
    record_failure,
    run_upgrade_actions,
    stage_context,
    take_snapshot,
)
from stagegraph.errors import DeployError, StagegraphError
from stagegraph.fingerprint import FINGERPRINTED, changed_inputs
from stagegraph.immutable import immutable_values
from stagegraph.inputs import recorded_outputs, secret_env, stage_inputs
from stagegraph.prediction import reads_outputs
from stagegraph.records import PlanInfo, StageRecord
from stagegraph.status import is_up_to_date
from stagegraph.tfexpr import UNKNOWN, is_known
from stagegraph.tfpredict import merge_known, predict_outputs_in
from stagegraph.tfstate import check_state, identity_after_apply

if TYPE_CHECKING:
    from stagegraph.stage import Stage

PLAN_FILE = "stagegraph.tfplan"


def _planned_upstream(rt: Runtime, stage: Stage) -> tuple[dict[str, BaseModel], dict[str, list[str]]]:
    """Upstream outputs from this run's plans, and per upstream the unknown ones this stage reads.

    Where an upstream's plan leaves an output unknown, its recorded value stands in; the
    plan is deferred only if this stage's variables depend on such an output.
    """
    known: dict[str, BaseModel] = {}
    unknown: dict[str, list[str]] = {}
    for dep in stage.depends_on:
        summary = rt.plans.get(dep)
        if summary is None or not summary.has_changes:
            continue  # not planned here, or unchanged: its recorded outputs stand
        dep_stage = rt.project.graph[dep]
        fields = list(dep_stage.outputs.model_fields)
        values = {f: summary.outputs[f] for f in fields if is_known(summary.outputs.get(f, UNKNOWN))}
        missing = [f for f in fields if f not in values]
        try:
            recorded = recorded_outputs(rt.project, dep) if missing else None
            base = {**(recorded.model_dump(mode="json") if recorded else {}), **values}
            known[dep] = dep_stage.outputs.model_validate(base)
        except (ValidationError, StagegraphError):
            unknown[dep] = fields
            continue
        if missing and reads_outputs(rt.project, stage, known, dep, missing):
            unknown[dep] = missing
    return known, unknown


def plan_stage(rt: Runtime, name: str) -> None:
    """Plan one stage against what its upstreams will output after their plans apply."""
    project = rt.project
    stage = project.graph[name]
    stage_dir = project.stage_dir(stage)
    known, unknown = _planned_upstream(rt, stage)
    inputs = stage_inputs(project, stage, allow_mocks=True, upstream=known)
    env, _ = secret_env(project, stage)
    record = project.records.get(name)
    check_state(name, stage_dir, record.state if record else None)
    rt.console.start(name)
    t0 = time.monotonic()
    driver = driver_of(stage)
    ctx = stage_context(rt, stage, "plan", inputs.variables, env, record)
    changes = driver.plan(ctx, stage_dir / PLAN_FILE)
    planned = getattr(driver, "planned", None)
    summary = planned(ctx, stage_dir / PLAN_FILE) if planned is not None else None
    if summary is not None:
        known = merge_known(summary.outputs, predict_outputs_in(stage_dir, inputs.variables))
        summary = replace(summary, outputs=known)
    rt.plans[name] = summary
    info = PlanInfo(
        path=str(stage_dir / PLAN_FILE),
        fingerprint=inputs.fingerprint,
        used_mock=bool(inputs.mocked),
        created_at=now(),
        deferred_on=sorted(unknown),
    )
    if record is None:
        record = StageRecord(
            stage=name,
            status="failed",
            fingerprint=None,
            inputs={},
            outputs={},
            applied_at=None,
            attempted_at=now(),
            duration_s=None,
            error="planned, never applied",
            log=None,
            runner=None,
            init_digest=None,
            plan=info,
        )
    else:
        record = record.model_copy(update={"plan": info})
    project.records.put(record)
    terraform = summary.describe() if summary is not None else ("changes" if changes else "no changes")
    current = record.status == "applied" and record.fingerprint == inputs.fingerprint
    took = time.monotonic() - t0
    if current and not unknown:
        # What `deploy` would skip: say so, and say if Terraform sees drift anyway.
        drift = f"; Terraform would still change: {terraform}" if terraform != "no changes" else ""
        rt.summary.add(name, "skipped", took, "up to date" + drift)
        rt.console.finish(name, "planned", took, detail="up to date" + drift)
        return
    what = terraform
    if record.applied_at is not None and not current:
        changed = [line.split(": ")[0] for line in changed_inputs(record.inputs, inputs.inputs)]
        decisive = [key for key in changed if key.startswith(FINGERPRINTED)]
        what = (
            f"{terraform} (inputs changed: {', '.join(decisive[:4])}{', ...' if len(decisive) > 4 else ''})"
        )
    if unknown:
        waits = "; ".join(f"{', '.join(fields)} of {dep}" for dep, fields in unknown.items())
        what = f"after {', '.join(unknown)} applies ({waits} known only then); for now {what}"
    if inputs.mocked:
        what += f"; against mock outputs of {', '.join(inputs.mocked)}, so apply those first"
    rt.summary.add(name, "planned", took, what)
    rt.console.finish(name, "planned", took, detail=what)


def apply_plan(rt: Runtime, name: str) -> None:
    """Apply the saved plan of a stage; refuse plans made against mocks, deferred or stale inputs."""
    project = rt.project
    stage = project.graph[name]
    record = project.records.get(name)
    if record is None or record.plan is None:
        if record is not None and record.status == "applied" and is_up_to_date(project, name):
            rt.summary.add(name, "skipped", 0.0, "up to date, no saved plan")
            return
        raise DeployError(f"stage {name} has no saved plan; run `doit plan` first")
    plan = record.plan
    # The record is a file in the deployment folder, so untrusted: the plan it names must be
    # the stage's own plan file, which is then the only file this touches.
    plan_path = project.stage_dir(stage) / PLAN_FILE
    if Path(plan.path) != plan_path:
        raise DeployError(
            f"{project.records.path(name)}: plan.path: {plan.path!r} is not this stage's plan file "
            f"{plan_path}; run `doit plan` again"
        )
    if record.status == "applied" and is_up_to_date(project, name):
        plan_path.unlink(missing_ok=True)
        rt.summary.add(name, "skipped", 0.0, "up to date")
        return
    if plan.used_mock:
        raise DeployError(
            f"stage {name}: its saved plan was made against mock outputs of stages that were not "
            "applied then; run `doit plan` again now that they are (or use `doit deploy`)"
        )
    if plan.deferred_on:
        raise DeployError(
            f"stage {name}: its saved plan was made before {', '.join(plan.deferred_on)} applied and "
            "needs outputs known only then; run `doit plan` again now (or use `doit deploy`)"
        )
    check_state(name, project.stage_dir(stage), record.state)
    inputs = stage_inputs(project, stage)
    if inputs.fingerprint != plan.fingerprint:
        raise DeployError(f"stage {name}: inputs changed since its plan was made; run `doit plan` again")
    env, _ = secret_env(project, stage)
    started, t0 = now(), time.monotonic()
    rt.console.start(name)
    ctx = stage_context(rt, stage, "apply", inputs.variables, env, record)
    try:
        _run_preflight(rt, stage)
        run_upgrade_actions(rt, stage, "before")
        take_snapshot(rt, stage, record)
        result = driver_of(stage).apply_plan(ctx, plan_path)
        outputs = _validated_outputs(stage, result.outputs)
        _run_check(rt, stage, outputs)
    except StagegraphError as exc:
        record_failure(rt, stage, started, time.monotonic() - t0, exc, ctx.log_path)
        raise
    duration = time.monotonic() - t0
    project.records.record_success(
        name,
        fingerprint=inputs.fingerprint,
        inputs=inputs.inputs,
        outputs=outputs.model_dump(mode="json"),
        attempted_at=started,
        duration_s=duration,
        log=ctx.log_path,
        runner=result.runner,
        init_digest=result.init_digest,
        immutable=immutable_values(project.config),
        state=identity_after_apply(project.stage_dir(stage)),
        source=stage.source,
    )
    plan_path.unlink(missing_ok=True)
    run_upgrade_actions(rt, stage, "after")
    rt.summary.add(name, "applied", duration, "saved plan")
    rt.console.finish(name, "applied (saved plan)", duration)
    from stagegraph.sharedstate.bootstrap import after_apply

    after_apply(rt, name)  # 01 on a cloud: records, lock and its state into the store it made
