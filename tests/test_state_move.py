# ruff: noqa: F811 (fixtures imported by name from other test modules, then requested)
"""`doit move_state`: local state to S3 and back, with real Terraform against a local S3 (moto) on loopback.

The moto server is `test_shared_state`'s, the project helpers `sharedstores`'. Each test drives the
command line users type and checks what they would: where the state objects and records
are, that a fresh clone deploys as a no-op, that refusals change nothing.
"""

from __future__ import annotations

import hashlib
import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from sandboxproject import SandboxProject
from sharedstores import S3Shared, point_at
from sharedstores import start_holder as start_shared_holder
from test_secrets_canary_e2e import CANARY
from test_secrets_canary_e2e import project as canary_project  # noqa: F401 (fixture: SOPS canary)
from test_shared_state import ALL_APPLIED, retitle, s3_env  # noqa: F401 (s3_env: the moto server)

boto3 = pytest.importorskip("boto3")

STAGES_WITH_STATE = 10


@pytest.fixture
def bucket(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    name = f"team-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def objects(bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def make_remote(project: SandboxProject, bucket: str, env: dict[str, str], **state: Any) -> SandboxProject:
    return point_at(project, S3Shared(bucket, env), **state)


def clone(where: Path, bucket: str, env: dict[str, str], **state: Any) -> SandboxProject:
    """A fresh copy of the deployment folder pointed at the bucket: no local records or state."""
    return make_remote(SandboxProject.create(where), bucket, env, **state)


def make_local(project: SandboxProject, **state: Any) -> None:
    project.edit_config(lambda c: c.update(terraform_state={"type": "local", **state}))


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` -> digest of its bytes; logs aside (a refusal may log the
    Terraform that read the target), and doit's cache (doit writes it on every run)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith((".stagegraph/logs/", ".stagegraph/doit-db")):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def state_files(project: SandboxProject) -> list[Path]:
    """The local Terraform states (not `.terraform/terraform.tfstate`, Terraform's note of its backend)."""
    return sorted(
        p for p in (project.root / "stages").rglob("terraform.tfstate") if p.parent.name != ".terraform"
    )


def lineages(project: SandboxProject) -> dict[str, tuple[str, int]]:
    """Stage folder (relative) -> (lineage, serial) of its local state."""
    out = {}
    for path in state_files(project):
        doc = json.loads(path.read_text())
        out[path.parent.relative_to(project.root / "stages").as_posix()] = (doc["lineage"], doc["serial"])
    return out


def remote_lineages(bucket: str) -> dict[str, tuple[str, int]]:
    out = {}
    for key, data in objects(bucket).items():
        if key.startswith("demo/") and key.endswith(".tfstate") and "/retired/" not in key:
            doc = json.loads(data)
            out[key.removeprefix("demo/").removesuffix(".tfstate")] = (doc["lineage"], doc["serial"])
    return out


def deployed_locally(where: Path) -> SandboxProject:
    project = SandboxProject.create(where)
    project.doit("deploy")
    assert len(project.applied_in_last_run()) == ALL_APPLIED
    return project


def test_local_to_s3_and_back_moves_state_and_records_and_loses_nothing(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    first = deployed_locally(tmp_path / "first")
    before = lineages(first)
    assert len(before) == STAGES_WITH_STATE
    records_before = first.records()

    make_remote(first, bucket, s3_env)
    refused = first.doit("deploy", check=False)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "Traceback" not in out
    assert (
        f"state is in local state files (next to each stage), the config says s3://{bucket}/demo/: "
        "run `doit move_state`" in out
    )
    assert objects(bucket) == {}

    dry = first.doit("move_state", "--dry-run")
    assert f"would move from local state files (next to each stage) to s3://{bucket}/demo/" in dry.stdout
    assert "07-kubernetes-services: state (lineage" in dry.stdout
    assert objects(bucket) == {} and lineages(first) == before

    moved = first.doit("move_state")
    assert "verified" in moved.stdout and "Traceback" not in moved.stderr
    remote = remote_lineages(bucket)
    # Every state arrived with its lineage; nothing is left in the stage folders.
    assert {k: v[0] for k, v in remote.items()} == {k: v[0] for k, v in before.items()}
    assert all(remote[k][1] >= before[k][1] for k in before)
    assert state_files(first) == []
    backups = list((first.state_dir / "state-moved").glob("*/07-kubernetes-services/terraform.tfstate"))
    assert len(backups) == 1  # moved aside, never deleted
    assert not list((first.state_dir / "records").glob("*.json"))
    stored = objects(bucket)
    assert len([k for k in stored if k.startswith("demo/records/")]) == ALL_APPLIED
    moved_record = json.loads(stored["demo/records/07-kubernetes-services.json"])
    assert moved_record["outputs"] == records_before["07-kubernetes-services"]["outputs"]
    assert moved_record["applied_at"] == records_before["07-kubernetes-services"]["applied_at"]
    # 01 records the layout: the move applied it, so everything is up to date.
    assert first.applied_in_last_run() == {"01-terraform-state"}

    first.doit("deploy")
    assert first.applied_in_last_run() == set()
    assert "nothing to move: the state is in s3://" in first.doit("move_state").stdout
    second = clone(tmp_path / "second", bucket, s3_env)
    second.doit("deploy")
    assert second.applied_in_last_run() == set()
    retitle(second, "Moved")
    second.doit("deploy")
    assert second.applied_in_last_run() == {"07-kubernetes-services"}

    # And back: the first clone takes the change along.
    retitle(first, "Moved")
    make_local(first)
    back = first.doit("move_state")
    assert "verified" in back.stdout
    assert {k: v[0] for k, v in lineages(first).items()} == {k: v[0] for k, v in before.items()}
    assert len(first.records()) == ALL_APPLIED
    assert remote_lineages(bucket) == {}  # retired under demo/retired/<when>/
    assert any(
        k.startswith("demo/retired/") and k.endswith("07-kubernetes-services.tfstate")
        for k in objects(bucket)
    )
    first.doit("deploy")
    assert first.applied_in_last_run() == set()

    # The second clone still says S3: the moved.json there refuses it, naming the new place.
    refused = second.doit("deploy", check=False)
    out = refused.stdout + refused.stderr
    assert (
        refused.returncode != 0
        and "state is in local state files" in out
        and "moved by `doit move_state`" in out
    )


def _first_deployed_then_pointed_at_s3(
    tmp_path: Path, bucket: str, env: dict[str, str], **state: Any
) -> SandboxProject:
    project = deployed_locally(tmp_path / "p")
    make_remote(project, bucket, env, **state)
    return project


def _failed(project: SandboxProject) -> None:
    records = project.state_dir / "records" / "07-kubernetes-services.json"
    data = json.loads(records.read_text())
    data.update(status="failed", error="boom")
    records.write_text(json.dumps(data))


def _saved_plan(project: SandboxProject) -> None:
    records = project.state_dir / "records" / "05-kubernetes-keycloak.json"
    data = json.loads(records.read_text())
    data["plan"] = {
        "path": "plan.tfplan",
        "fingerprint": "x",
        "used_mock": False,
        "created_at": data["attempted_at"],
    }
    records.write_text(json.dumps(data))


def _orphan(project: SandboxProject) -> None:
    records = project.state_dir / "records"
    data = json.loads((records / "08-nebari-tf-extensions.json").read_text())
    data["stage"] = "50-gone-plugin"
    (records / "50-gone-plugin.json").write_text(json.dumps(data))


def _hand_edit(project: SandboxProject) -> None:
    main = project.stage_dir("04-kubernetes-ingress") / "main.tf.json"
    main.write_text(main.read_text().replace("{", "{ ", 1))


def _other_lineage(project: SandboxProject) -> None:
    path = project.stage_dir("03-kubernetes-initialize") / "terraform.tfstate"
    doc = json.loads(path.read_text())
    doc["lineage"] = "0000-not-this-one"
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        (_failed, "07-kubernetes-services: its last apply failed"),
        (_saved_plan, "a saved plan is pending"),
        (_orphan, "50-gone-plugin"),
        (_hand_edit, "edited by hand"),
        (_other_lineage, "not the Terraform state stage 03-kubernetes-initialize was applied with"),
    ],
)
def test_a_half_applied_deployment_is_refused_and_nothing_changes(
    tmp_path: Path, bucket: str, s3_env: dict[str, str], spoil: Any, says: str
) -> None:
    project = _first_deployed_then_pointed_at_s3(tmp_path, bucket, s3_env)
    spoil(project)
    before = tree(project.root)
    refused = project.doit("move_state", check=False)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0, out
    assert says in out and "Traceback" not in out
    assert len([line for line in out.splitlines() if line.strip()]) <= 2, out
    assert tree(project.root) == before
    assert objects(bucket) == {}


def test_a_move_while_a_run_holds_either_lock_is_refused(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    from stagegraph.projectlock import ProjectLock

    project = _first_deployed_then_pointed_at_s3(tmp_path, bucket, s3_env)
    before = tree(project.root)
    lock = ProjectLock(project.state_dir, "deploy").acquire()  # an apply in flight on this machine
    try:
        refused = project.doit("move_state", check=False)
    finally:
        lock.release()
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "'deploy' by" in out and "Traceback" not in out, out
    assert tree(project.root) == before and objects(bucket) == {}

    holder = start_shared_holder(S3Shared(bucket, s3_env), 30)  # a deploy in flight on another machine
    try:
        refused = project.doit("move_state", check=False)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "holds the shared lock" in out and f"pid {holder.pid}" in out, out
    assert tree(project.root) == before
    assert list(objects(bucket)) == ["demo/lock.json"]


CRASH_AFTER_PUSHES = """
import os, signal
from stagegraph import terraform
push = terraform.Terraform.state_push
count = [0]
def crashing_push(self, path, *, force=False):
    push(self, path, force=force)
    count[0] += 1
    if count[0] == int(os.environ["CRASH_AFTER_PUSHES"]):
        os.kill(os.getpid(), signal.SIGKILL)
terraform.Terraform.state_push = crashing_push
"""


def test_an_interrupted_move_refuses_deploys_and_a_rerun_completes_it(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    # A short lease: the killed move's shared lock expires while the rerun waits for it.
    project = _first_deployed_then_pointed_at_s3(tmp_path, bucket, s3_env, lock_lease_s=2, lock_wait_s=15)
    before = lineages(project)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASH_AFTER_PUSHES)
    crashing = SandboxProject(
        project.root, extra_env={**project.extra_env, "PYTHONPATH": str(hooks), "CRASH_AFTER_PUSHES": "7"}
    )
    died = crashing.doit("move_state", check=False)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert 0 < len(remote_lineages(bucket)) < STAGES_WITH_STATE  # some copied, the source untouched
    assert lineages(project) == before

    refused = project.doit("deploy", check=False)
    assert refused.returncode != 0
    assert "was interrupted: run `doit move_state` to finish it" in refused.stdout + refused.stderr

    project.doit("move_state")
    assert {k: v[0] for k, v in remote_lineages(bucket).items()} == {k: v[0] for k, v in before.items()}
    assert state_files(project) == []
    project.doit("deploy")
    assert project.applied_in_last_run() == set()
    second = clone(tmp_path / "second", bucket, s3_env)
    second.doit("deploy")
    assert second.applied_in_last_run() == set()


def test_moved_records_and_output_hold_no_secret(
    canary_project: SandboxProject,
    bucket: str,
    s3_env: dict[str, str],
) -> None:
    canary_project.doit("deploy")
    make_remote(canary_project, bucket, s3_env)
    moved = canary_project.doit("move_state")
    assert CANARY not in moved.stdout + moved.stderr
    stored = objects(bucket)
    holding = sorted(key for key, data in stored.items() if CANARY.encode() in data)
    assert holding and all(key.endswith(".tfstate") for key in holding), holding
    location = (canary_project.state_dir / "state-location.json").read_text()
    assert CANARY not in location
    for log in (canary_project.state_dir / "logs").glob("*.move_state.log"):
        assert CANARY not in log.read_text()


CRASH_WHILE_RETIRING = """
import os, signal
from stagegraph import sharedstate
delete = sharedstate.S3Client.delete
def crashing_delete(self, name, *args, **kw):
    if name.startswith("records/"):
        os.kill(os.getpid(), signal.SIGKILL)
    return delete(self, name, *args, **kw)
sharedstate.S3Client.delete = crashing_delete
"""


def test_a_move_back_killed_while_retiring_the_bucket_completes_on_rerun(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    project = _first_deployed_then_pointed_at_s3(tmp_path, bucket, s3_env, lock_lease_s=2, lock_wait_s=15)
    project.doit("move_state")
    in_s3 = remote_lineages(bucket)
    make_local(project, lock_lease_s=2, lock_wait_s=15)  # the bucket's lock, taken by the move back
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASH_WHILE_RETIRING)
    crashing = SandboxProject(project.root, extra_env={**project.extra_env, "PYTHONPATH": str(hooks)})
    died = crashing.doit("move_state", check=False)
    assert died.returncode == -signal.SIGKILL, died.stderr
    # Switched (local state and records written) but the bucket is only partly retired.
    assert {k: v[0] for k, v in lineages(project).items()} == {k: v[0] for k, v in in_s3.items()}
    assert any(k.startswith("demo/records/") for k in objects(bucket))
    refused = project.doit("status", check=False)
    assert refused.returncode != 0 and "was interrupted" in refused.stdout + refused.stderr

    project.doit("move_state")
    stored = objects(bucket)
    assert not any(k.startswith("demo/records/") for k in stored) and remote_lineages(bucket) == {}
    assert len([k for k in stored if k.startswith("demo/retired/") and k.endswith(".tfstate")]) == len(in_s3)
    assert "demo/moved.json" in stored
    project.doit("deploy")
    assert project.applied_in_last_run() == set()


def test_a_target_holding_another_deployment_is_refused_and_nothing_changes(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    other = clone(tmp_path / "other", bucket, s3_env)  # another deployment already uses demo/
    other.doit("deploy")
    theirs = objects(bucket)
    project = _first_deployed_then_pointed_at_s3(tmp_path, bucket, s3_env)
    before = tree(project.root)
    refused = project.doit("move_state", check=False)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "Traceback" not in out
    assert f"s3://{bucket}/demo/ already holds deploy records" in out and "a folder (key) of its own" in out
    assert tree(project.root) == before and objects(bucket) == theirs
