"""Shared state for teams: two clones of one deployment against each shared store.

Every scenario runs twice, with real Terraform:
- `s3`: Terraform's S3 backend against a local S3 server (moto) on loopback, reached
  through `AWS_ENDPOINT_URL_S3`; records and lock are objects beside the state;
- `kube`: Terraform's kubernetes backend against the FAKE Kubernetes API (`kubefake`, a
  stand-in served over TLS and reached through a real kubeconfig); state in Secrets,
  records in ConfigMaps, the lock in a Lease.
"""

from __future__ import annotations

import json
import signal
import socket
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubefake import FakeKube
from sandboxproject import SandboxProject
from sharedstores import KubeShared, S3Shared, Shared, point_at, start_holder
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


@pytest.fixture(params=["s3", "kube"])
def shared(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Shared]:
    if request.param == "s3":
        env = request.getfixturevalue("s3_env")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        bucket = f"team-{uuid.uuid4().hex[:12]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        yield S3Shared(bucket, env)
        return
    with FakeKube(tls=True) as fake:
        kube = KubeShared(fake, fake.write_kubeconfig(tmp_path / "kube" / "config"))
        yield kube
        # Real Terraform and stagegraph asked only for what the fake serves.
        assert fake.unknown == []


def clone(where: Path, shared: Shared, **state: object) -> SandboxProject:
    """A fresh copy of the deployment folder: config and pins, no local records or state."""
    return point_at(SandboxProject.create(where), shared, **state)


def retitle(project: SandboxProject, title: str) -> None:
    project.edit_config(lambda c: c["theme"]["jupyterhub"].update(hub_title=title))


def test_second_clone_knows_what_is_applied_and_a_change_from_it_is_a_noop_from_the_first(
    tmp_path: Path, shared: Shared
) -> None:
    first = clone(tmp_path / "first", shared)
    first.doit("deploy")
    assert len(first.applied_in_last_run()) == ALL_APPLIED
    # Terraform's backend keeps the state, stagegraph its records, side by side.
    assert "07-kubernetes-services" in shared.state()
    assert shared.record("07-kubernetes-services") is not None
    assert not shared.lock_held()  # released
    assert not (first.state_dir / "records").exists()  # nothing local is the truth
    # The rendered stage carries its backend, so it deploys by hand as well.
    backend = json.loads(next(first.root.rglob("07-kubernetes-services/backend.tf.json")).read_text())
    assert set(backend["terraform"]["backend"]) == {"s3" if shared.name == "s3" else "kubernetes"}

    second = clone(tmp_path / "second", shared)
    second.doit("deploy")
    assert second.applied_in_last_run() == set()

    retitle(second, "Team demo")
    second.doit("deploy")
    assert second.applied_in_last_run() == {"07-kubernetes-services"}

    retitle(first, "Team demo")
    first.doit("deploy")
    assert first.applied_in_last_run() == set()
    record = shared.record("07-kubernetes-services")
    assert record is not None and record["status"] == "applied"


def test_a_live_holder_is_named_after_the_bounded_wait_and_a_killed_one_expires(
    tmp_path: Path, shared: Shared
) -> None:
    # Long enough that a holder starved of CPU for a second (parallel test files on a small
    # machine) still renews in time: a takeover needs a gap of a whole lease.
    lease = 3.0
    holder = start_holder(shared, lease)
    try:
        # Waiting longer than the lease: the holder's renewals keep it.
        waiting = clone(tmp_path / "ci", shared, lock_wait_s=lease * 2)
        started = time.monotonic()
        refused = waiting.doit("deploy", check=False)
        waited = time.monotonic() - started
        assert refused.returncode != 0
        out = refused.stdout + refused.stderr
        assert f"pid {holder.pid}" in out and socket.gethostname() in out
        assert "holds the shared lock" in out and f"waited {lease * 2:g}s" in out
        assert shared.where() in out
        assert waited >= lease * 2
        assert "Traceback" not in out
        assert shared.state() == {}  # nothing applied

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        # Its lock outlives it, then expires and is taken over within the wait.
        assert shared.lock_held()
        taker = clone(tmp_path / "taker", shared, lock_wait_s=lease * 5)
        taker.doit("deploy")
        assert len(taker.applied_in_last_run()) == ALL_APPLIED
        assert not shared.lock_held()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def test_concurrent_deploys_one_wins_the_other_is_refused_naming_it(tmp_path: Path, shared: Shared) -> None:
    a = clone(tmp_path / "a", shared)
    b = clone(tmp_path / "b", shared)
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
    from stagegraph.sharedstate import records
    write = records.SharedRecordStore._write
    def crashing_write(self, path, data):
        if path == self.path(os.environ["CRASH_BEFORE_RECORD"]):
            os.kill(os.getpid(), signal.SIGKILL)
        return write(self, path, data)
    records.SharedRecordStore._write = crashing_write
    """
)


def test_killed_between_apply_and_remote_record_the_rerun_reapplies_that_stage_only(
    tmp_path: Path, shared: Shared
) -> None:
    project = clone(tmp_path / "one", shared, lock_lease_s=2, lock_wait_s=15)
    project.doit("deploy")
    state_before = shared.state()
    record_before = shared.record("07-kubernetes-services")
    assert record_before is not None

    # Crash injection: a sitecustomize that SIGKILLs doit as it writes 07's shared record.
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASH)
    retitle(project, "Crashed title")
    crashed = SandboxProject(project.root, extra_env={**project.extra_env, "PYTHONPATH": str(hooks)})
    crashed.extra_env["CRASH_BEFORE_RECORD"] = "07-kubernetes-services"
    died = crashed.doit("deploy", check=False)
    assert died.returncode == -signal.SIGKILL, died.stderr
    # Applied (Terraform wrote the new state)...
    assert shared.state()["07-kubernetes-services"] != state_before["07-kubernetes-services"]
    # ...but not recorded: the shared record still has the last fingerprint.
    record = shared.record("07-kubernetes-services")
    assert record is not None and record["fingerprint"] == record_before["fingerprint"]

    project.doit("deploy")  # waits out the dead run's lease
    assert project.applied_in_last_run() == {"07-kubernetes-services"}
    project.doit("deploy")
    assert project.applied_in_last_run() == set()


TAKEOVER = textwrap.dedent(
    """
    import json, os, time
    from stagegraph import deploy
    from stagegraph.sharedstate.store import LOCK_OBJECT
    snapshot = deploy.take_snapshot
    def taken_over(rt, stage, record):
        if stage.name == os.environ["TAKEOVER_DURING"]:
            # Another run takes the lock over (as if this run's lease had run out unseen).
            # Until it wins: a renewal of the holder's landing between our read and our
            # write makes the write miss (a loaded machine widens that window).
            store = rt.project.shared_store
            for _ in range(100):
                current = store.get(LOCK_OBJECT)
                body = json.loads(current.data)
                body.update(pid=4242, host="ci-runner-7", user="ci", command="deploy")
                if store.replace(LOCK_OBJECT, json.dumps(body).encode(), current.version):
                    break
            else:
                raise SystemExit("the test's takeover never won the lock")
            time.sleep(float(os.environ["TAKEOVER_SLEEP"]))  # the holder's next renewal sees it
        return snapshot(rt, stage, record)
    deploy.take_snapshot = taken_over
    """
)


def test_a_run_whose_lock_is_taken_over_finishes_its_stage_and_starts_no_other(
    tmp_path: Path, shared: Shared
) -> None:
    lease = 1.5
    project = clone(tmp_path / "one", shared, lock_lease_s=lease)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(TAKEOVER)
    project.extra_env.update(
        # 03: every later stage needs it, so none runs beside it.
        PYTHONPATH=str(hooks),
        TAKEOVER_DURING="03-kubernetes-initialize",
        TAKEOVER_SLEEP=str(lease),
    )
    lost = project.doit("deploy", check=False)
    assert lost.returncode != 0
    out = lost.stdout + lost.stderr
    assert "the shared lock was taken over by 'deploy' by ci@ci-runner-7 pid 4242" in out
    assert "this run started no stage after that" in out
    assert "deploy: 3 applied, " in out and " failed" in out  # the summary counts the refusal
    assert "Traceback" not in out
    # The stage that was running finished and was recorded; nothing after it started.
    assert set(shared.state()) == {"01-terraform-state", "02-infrastructure", "03-kubernetes-initialize"}
    record = shared.record("03-kubernetes-initialize")
    assert record is not None and record["status"] == "applied"
    assert shared.record("04-kubernetes-ingress") is None
    assert shared.lock_held()  # the new holder's: a run that lost the lock never deletes it


def test_shared_records_hold_digests_never_the_secret(
    canary_project: SandboxProject,  # noqa: F811 (the fixture imported above)
    shared: Shared,
) -> None:
    point_at(canary_project, shared).doit("deploy")
    stored = shared.everything()
    holding = sorted(key for key, data in stored.items() if CANARY.encode() in data)
    # The canary did reach the store, in Terraform state only (that is where Terraform keeps it).
    state = (lambda k: k.endswith(".tfstate")) if shared.name == "s3" else (lambda k: k.startswith("secret/"))
    assert holding and all(state(key) for key in holding), holding
    assert len(shared.records()) == ALL_APPLIED


def test_a_deployment_with_local_records_is_refused_when_its_config_points_at_a_shared_store(
    tmp_path: Path, shared: Shared
) -> None:
    project = SandboxProject.create(tmp_path / "local")
    project.doit("deploy")
    point_at(project, shared)
    refused = project.doit("deploy", check=False)
    assert refused.returncode != 0
    out = refused.stdout + refused.stderr
    assert "state is in local state files (next to each stage), the config says" in out
    assert "run `doit move_state`" in out and "Traceback" not in out
    assert shared.state() == {} and shared.records() == []  # nothing applied against the empty store


def test_an_orphan_whose_state_is_shared_is_destroyed_through_its_backend(
    tmp_path: Path, shared: Shared
) -> None:
    # No local terraform.tfstate: the orphan's resources are known to its backend alone.
    from test_orphans import HELLO_SRC, ORPHAN, set_plugin

    p = clone(tmp_path / "p", shared)
    p.extra_env["PYTHONPATH"] = str(HELLO_SRC)
    set_plugin(p, True)
    p.doit("deploy", "--stop-at", ORPHAN)
    assert json.loads(shared.state()[ORPHAN])["resources"]
    set_plugin(p, False)
    assert "destroyed (left the graph)" in p.doit("destroy_orphans").stdout
    assert json.loads(shared.state()[ORPHAN])["resources"] == []
    record = shared.record(ORPHAN)
    assert record is not None and record["status"] == "destroyed"
