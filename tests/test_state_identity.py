"""A stage's record knows its Terraform state; a lost or swapped state is refused, never
silently re-created (issue 12 item 7), and a failed first apply says so (item 11).

Runs `doit` in a sandbox deployment under tmp_path through real Terraform.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sandboxproject import SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STAGE = "03-kubernetes-initialize"


@pytest.fixture
def project(tmp_path: Path) -> SandboxProject:
    p = SandboxProject.create(tmp_path / "deploy")
    p.doit("deploy", "--stop-at", STAGE)
    return p


def _state(p: SandboxProject, stage: str = STAGE) -> Path:
    # Some stages render into a per-provider subfolder (02-infrastructure/sandbox).
    return next((p.root / "stages" / stage).rglob("terraform.tfstate"))


def _status(p: SandboxProject) -> dict[str, str]:
    rows = p.doit("status").stdout.splitlines()[1:]
    return {r.split()[0]: r for r in rows}


def _error(proc: object) -> str:
    out = str(getattr(proc, "stdout", "")) + str(getattr(proc, "stderr", ""))
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out
    return errors[0]


def test_the_record_carries_the_state_identity(project: SandboxProject) -> None:
    state = json.loads(_state(project).read_text())
    recorded = project.records()[STAGE]["state"]
    assert recorded == {"lineage": state["lineage"], "serial": state["serial"]}


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("deleted", "is missing, but the stage was applied"),
        ("truncated", "is unreadable"),
        ("another deployment's", "this is not the Terraform state"),
    ],
)
def test_status_deploy_plan_and_destroy_refuse_a_lost_state(
    project: SandboxProject, damage: str, says: str
) -> None:
    path = _state(project)
    if damage == "deleted":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    else:
        shutil.copy(_state(project, "02-infrastructure"), path)
    row = _status(project)[STAGE]
    assert "state lost" in row and str(path) in row and says in row
    for command in (["deploy", "--stop-at", STAGE], ["plan"], ["destroy"]):
        proc = project.doit(*command, check=False)
        assert proc.returncode != 0, command
        error = _error(proc)
        assert str(path) in error and says in error and f"doit forget_state {STAGE}" in error, command
    # Nothing re-created the state behind the user's back.
    assert damage != "deleted" or not path.exists()
    # Accepting the loss: the stage applies anew and everything is consistent again.
    forgot = project.doit("forget_state", STAGE)
    assert f"{STAGE}: forgot its deploy record" in forgot.stdout
    project.doit("deploy", "--stop-at", STAGE)
    assert project.applied_in_last_run() == {STAGE}
    assert "applied" in _status(project)[STAGE].split()[1]


def test_restoring_the_backup_makes_the_stage_stale_and_the_next_deploy_catches_up(
    project: SandboxProject,
) -> None:
    # A second apply of the stage makes Terraform keep the previous state as a backup.
    project.edit_config(lambda c: c.update(namespace="other"))
    # namespace is an immutable field (stagegraph.immutable): this change is on purpose.
    project.doit("deploy", "--stop-at", STAGE, "--allow-change", "namespace")
    path = _state(project)
    backup = path.with_name("terraform.tfstate.backup")
    assert backup.exists()
    path.unlink()
    proc = project.doit("deploy", "--stop-at", STAGE, check=False)
    assert f"cp {backup} {path}" in _error(proc)
    shutil.copy(backup, path)
    row = _status(project)[STAGE]
    assert row.split()[1] == "stale" and "older than the last apply" in row
    project.doit("deploy", "--stop-at", STAGE)
    assert project.applied_in_last_run() == {STAGE}
    project.doit("deploy", "--stop-at", STAGE)
    assert project.applied_in_last_run() == set()


def test_a_failed_first_apply_says_failed_and_that_resources_may_exist(tmp_path: Path) -> None:
    p = SandboxProject.create(tmp_path / "deploy")
    p.doit("render")
    main = next((p.root / "stages" / "01-terraform-state").rglob("main.tf.json"))
    doc = json.loads(main.read_text())
    doc.setdefault("output", {})["broken"] = {"value": "${terraform_data.nope.output}"}
    main.write_text(json.dumps(doc))
    proc = p.doit("deploy", "--disable-render", "--stop-at", "01-terraform-state", check=False)
    assert proc.returncode != 0
    row = _status(p)["01-terraform-state"]
    assert row.split()[1] == "failed" and "never applied" not in row
    why = p.doit("why", "01-terraform-state").stdout
    assert "failed" in why and "may already exist" in why and "never applied" not in why
