"""Shared state on S3: two clones of one deployment against a local S3 server (moto) on loopback.

Terraform's own S3 backend keeps every stage's state in the bucket, stagegraph keeps its
records and lock next to it. The endpoint reaches both through `AWS_ENDPOINT_URL_S3`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandboxproject import SandboxProject
from test_secrets_canary_e2e import CANARY
from test_secrets_canary_e2e import project as canary_project  # noqa: F401 (fixture: SOPS canary)

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

ALL_APPLIED = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    yield env
    server.stop()


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


def clone(where: Path, bucket: str, env: dict[str, str], **state: Any) -> SandboxProject:
    """A fresh copy of the deployment folder: config and pins, no local records or state."""
    return make_remote(SandboxProject.create(where), bucket, env, **state)


def make_remote(project: SandboxProject, bucket: str, env: dict[str, str], **state: Any) -> SandboxProject:
    """Point the project's state (Terraform's and stagegraph's) at `bucket`."""
    project.extra_env.update(env)

    def remote(config: dict[str, Any]) -> None:
        config["terraform_state"] = {
            "type": "existing",
            "backend": "s3",
            "config": {
                "bucket": bucket,
                "key": "demo",
                "region": "us-east-1",
                "use_path_style": "true",
                "skip_credentials_validation": "true",
                "skip_requesting_account_id": "true",
                "skip_metadata_api_check": "true",
                "skip_region_validation": "true",
            },
            **state,
        }

    project.edit_config(remote)
    return project


def retitle(project: SandboxProject, title: str) -> None:
    project.edit_config(lambda c: c["theme"]["jupyterhub"].update(hub_title=title))


def test_second_clone_knows_what_is_applied_and_a_change_from_it_is_a_noop_from_the_first(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    first = clone(tmp_path / "first", bucket, s3_env)
    first.doit("deploy")
    assert len(first.applied_in_last_run()) == ALL_APPLIED
    stored = objects(bucket)
    # Terraform's S3 backend keeps the state, stagegraph its records, side by side.
    assert "demo/07-kubernetes-services.tfstate" in stored
    assert "demo/records/07-kubernetes-services.json" in stored
    assert "demo/lock.json" not in stored  # released
    assert not (first.state_dir / "records").exists()  # nothing local is the truth

    second = clone(tmp_path / "second", bucket, s3_env)
    second.doit("deploy")
    assert second.applied_in_last_run() == set()

    retitle(second, "Team demo")
    second.doit("deploy")
    assert second.applied_in_last_run() == {"07-kubernetes-services"}

    retitle(first, "Team demo")
    first.doit("deploy")
    assert first.applied_in_last_run() == set()
    record = json.loads(objects(bucket)["demo/records/07-kubernetes-services.json"])
    assert record["status"] == "applied"


HOLDER = textwrap.dedent(
    """
    import sys, time
    from stagegraph.sharedstate import Lease, S3Client, S3Location, S3Lock
    where = S3Location(bucket=sys.argv[1], prefix="demo", region="us-east-1", path_style=True)
    lock = S3Lock(S3Client(where), "deploy", Lease(lease_s=float(sys.argv[2]), wait_s=0))
    lock.acquire()
    print("held", flush=True)
    time.sleep(120)
    """
)


def start_holder(bucket: str, lease_s: float, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, bucket, str(lease_s)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_holder_is_named_after_the_bounded_wait_and_a_killed_one_expires(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    lease = 2.0
    holder = start_holder(bucket, lease, s3_env)
    try:
        # Waiting longer than the lease: the holder's renewals keep it.
        waiting = clone(tmp_path / "ci", bucket, s3_env, lock_wait_s=lease * 2)
        started = time.monotonic()
        refused = waiting.doit("deploy", check=False)
        waited = time.monotonic() - started
        assert refused.returncode != 0
        out = refused.stdout + refused.stderr
        assert f"pid {holder.pid}" in out and socket.gethostname() in out
        assert "holds the shared lock" in out and "waited 4s" in out
        assert waited >= lease * 2
        assert "Traceback" not in out
        assert not any(k.endswith(".tfstate") for k in objects(bucket))  # nothing applied

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        # Its lock outlives it, then expires and is taken over within the wait.
        assert "demo/lock.json" in objects(bucket)
        taker = clone(tmp_path / "taker", bucket, s3_env, lock_wait_s=lease * 5)
        taker.doit("deploy")
        assert len(taker.applied_in_last_run()) == ALL_APPLIED
        assert "demo/lock.json" not in objects(bucket)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def test_concurrent_deploys_one_wins_the_other_is_refused_naming_it(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    a = clone(tmp_path / "a", bucket, s3_env)
    b = clone(tmp_path / "b", bucket, s3_env)
    runs = [p.popen("deploy") for p in (a, b)]
    outputs = [r.communicate(timeout=300)[0] for r in runs]
    codes = sorted(r.returncode for r in runs)
    assert codes[0] == 0 and codes[1] != 0, outputs
    loser = outputs[[r.returncode for r in runs].index(codes[1])]
    assert "holds the shared lock" in loser
    assert "'deploy' by" in loser
    winner = (a, b)[[r.returncode for r in runs].index(0)]
    assert len(winner.applied_in_last_run()) == ALL_APPLIED


CRASH = textwrap.dedent(
    """
    import os, signal
    from stagegraph import sharedstate
    put = sharedstate.S3Client.put
    def crashing_put(self, name, data, **kw):
        if name == "records/" + os.environ["CRASH_BEFORE_RECORD"] + ".json":
            os.kill(os.getpid(), signal.SIGKILL)
        return put(self, name, data, **kw)
    sharedstate.S3Client.put = crashing_put
    """
)


def test_killed_between_apply_and_remote_record_the_rerun_reapplies_that_stage_only(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    project = clone(tmp_path / "one", bucket, s3_env, lock_lease_s=2, lock_wait_s=15)
    project.doit("deploy")
    before = objects(bucket)
    record_before = json.loads(before["demo/records/07-kubernetes-services.json"])

    # Crash injection: a sitecustomize that SIGKILLs doit as it writes 07's remote record.
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASH)
    retitle(project, "Crashed title")
    crashed = SandboxProject(project.root, extra_env={**project.extra_env, "PYTHONPATH": str(hooks)})
    crashed.extra_env["CRASH_BEFORE_RECORD"] = "07-kubernetes-services"
    died = crashed.doit("deploy", check=False)
    assert died.returncode == -signal.SIGKILL, died.stderr
    after_crash = objects(bucket)
    # Applied (Terraform wrote the new state)...
    assert after_crash["demo/07-kubernetes-services.tfstate"] != before["demo/07-kubernetes-services.tfstate"]
    # ...but not recorded: the shared record still has the last fingerprint.
    record = json.loads(after_crash["demo/records/07-kubernetes-services.json"])
    assert record["fingerprint"] == record_before["fingerprint"]

    project.doit("deploy")  # waits out the dead run's lease
    assert project.applied_in_last_run() == {"07-kubernetes-services"}
    project.doit("deploy")
    assert project.applied_in_last_run() == set()


def test_shared_records_hold_digests_never_the_secret(
    canary_project: SandboxProject,  # noqa: F811 (the fixture imported above)
    bucket: str,
    s3_env: dict[str, str],
) -> None:
    make_remote(canary_project, bucket, s3_env).doit("deploy")
    stored = objects(bucket)
    holding = sorted(key for key, data in stored.items() if CANARY.encode() in data)
    # The canary did reach the store, in Terraform state only (that is where Terraform keeps it).
    assert holding and all(key.endswith(".tfstate") for key in holding), holding
    records = [key for key in stored if "/records/" in key]
    assert len(records) == ALL_APPLIED


def test_a_deployment_with_local_records_is_refused_when_its_config_points_at_s3(
    tmp_path: Path, bucket: str, s3_env: dict[str, str]
) -> None:
    project = SandboxProject.create(tmp_path / "local")
    project.doit("deploy")
    make_remote(project, bucket, s3_env)
    refused = project.doit("deploy", check=False)
    assert refused.returncode != 0
    out = refused.stdout + refused.stderr
    assert f"state is in local state files (next to each stage), the config says s3://{bucket}/demo/" in out
    assert "run `doit move_state`" in out and "Traceback" not in out
    assert objects(bucket) == {}  # nothing applied against the empty store
