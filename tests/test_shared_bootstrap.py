"""`terraform_state.type: remote` on aws, gcp, azure: records, lock and 01's state move into
the bucket stage 01 creates, and come back when 01 destroys it.

Stand-ins, by name:
- the stores: a local S3 server (moto) on loopback for aws, the FAKE GCS JSON API
  (`gcsfake`) for gcp, the FAKE Azure Blob service (`azureblobfake`) for azure, reached by the
  same clients and environment variables a user's run uses;
- `FakeStateStage`: stage 01's apply and destroy. The real one is Terraform with the aws,
  google or azurerm provider, which cannot be downloaded here. The fake does what they do
  that the engine can see: creates (or deletes) the bucket in the store's stand-in, and
  writes the local `terraform.tfstate` Terraform would (a lineage fixed at the first apply,
  the serial one up at every write).

Everything else is the product's code: the engine applies and destroys 01 through
`apply_stage`/`destroy_stage` in a `Session` that took its locks as `doit deploy` does.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from azureblobfake import ACCOUNT_KEY, FakeAzureBlob
from gcsfake import FakeGCS
from sharedstores import local_s3_server

from stagegraph.driver import ApplyResult, StageContext
from stagegraph.errors import StagegraphError
from stagegraph.records import RecordStore
from stagegraph.schema.cloud_names import storage_account_name
from stagegraph.sharedstate import lock as shared_lock
from stagegraph.sharedstate.azureblob import ENDPOINT_ENV
from stagegraph.sharedstate.bootstrap import STATE_OBJECT
from stagegraph.stages.cloud import names
from stagegraph.tasks import Session
from stagegraph.tfstate import STATE_FILE

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
ROOT = Path(__file__).resolve().parents[1]
STATE_STAGE = "01-terraform-state"
CLOUD_FIXTURES = {"aws": "aws-typical.happy.yaml", "gcp": "gcp.happy.yaml", "azure": "azure.happy.yaml"}


@dataclass
class Cloud:
    """One cloud's store stand-in: make or delete the bucket, list what is in it."""

    name: str
    #: The deployment's config (a project name of its own: the S3 stand-in is the module's).
    config: dict[str, Any]
    make: Callable[[str], None]
    remove: Callable[[str], None]
    objects: Callable[[str], dict[str, bytes]]


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    with local_s3_server() as url:
        yield url


def _config(cloud: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((FIXTURES / CLOUD_FIXTURES[cloud]).read_text())
    # A name of its own per test: the S3 stand-in is shared by the module.
    config["project_name"] = f"t{uuid.uuid4().hex[:8]}"
    config["terraform_state"] = {"type": "remote"}
    config["security"]["authentication"] = {"type": "password"}  # auth is not under test
    return config


@pytest.fixture(params=["aws", "gcp", "azure"])
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    if request.param == "aws":
        url = request.getfixturevalue("s3_url")
        for name, value in {
            "AWS_ENDPOINT_URL_S3": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3", region_name="us-east-1")

        def remove(bucket: str) -> None:
            for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
            s3.delete_bucket(Bucket=bucket)

        def objects(bucket: str) -> dict[str, bytes]:
            listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}

        yield Cloud("aws", _config("aws"), lambda b: s3.create_bucket(Bucket=b), remove, objects)
        return
    if request.param == "gcp":
        with FakeGCS(buckets=()) as gcs:
            monkeypatch.setenv("GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT", f"{gcs.url}/storage/v1/")
            monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", gcs.token)
            yield Cloud(
                "gcp",
                _config("gcp"),
                lambda b: gcs.buckets.setdefault(b, {}),
                lambda b: gcs.buckets.pop(b),
                lambda b: {n: d for n, (d, _) in gcs.buckets[b].items()},
            )
            assert gcs.unknown == []
        return
    # The fake serves one account: the one the config names (a Shared Key names it too).
    config = _config("azure")
    account = storage_account_name(config["project_name"], config["namespace"], "x7k2")
    assert config["azure"]["storage_account_postfix"] == "x7k2"
    with FakeAzureBlob(containers=(), account=account) as azure:
        monkeypatch.setenv(ENDPOINT_ENV, azure.url)
        monkeypatch.setenv("ARM_ACCESS_KEY", ACCOUNT_KEY)
        yield Cloud(
            "azure",
            config,
            lambda c: azure.containers.setdefault(c, {}),
            lambda c: azure.containers.pop(c),
            azure.blobs,
        )
        assert azure.unknown == []


def clone(where: Path, cloud: Cloud) -> Path:
    """A fresh copy of the deployment folder: config and pins, nothing in `.stagegraph/`."""
    where.mkdir(parents=True)
    (where / "lockfiles").mkdir()
    shutil.copy(ROOT / "lockfiles" / "versions.yaml", where / "lockfiles" / "versions.yaml")
    (where / "nebari-config.yaml").write_text(yaml.safe_dump(cloud.config))
    return where


class FakeStateStage:
    """FAKE stage 01 (see the module docstring): what Terraform with the cloud's provider does."""

    def __init__(self, cloud: Cloud, bucket: str) -> None:
        self.cloud, self.bucket = cloud, bucket
        self.applies = 0

    def _write_state(self, stage_dir: Path, resources: list[Any]) -> None:
        path = stage_dir / STATE_FILE
        old = json.loads(path.read_text()) if path.exists() else {"lineage": str(uuid.uuid4()), "serial": 0}
        body = {"version": 4, "lineage": old["lineage"], "serial": old["serial"] + 1, "resources": resources}
        path.write_text(json.dumps(body))

    def apply(self, ctx: StageContext) -> ApplyResult:
        self.applies += 1
        self.cloud.make(self.bucket)
        self._write_state(ctx.stage_dir, [{"type": "bucket", "name": "state", "id": self.bucket}])
        return ApplyResult(outputs={"state_backend": "remote", "backend_settings": {"bucket": self.bucket}})

    def destroy(self, ctx: StageContext) -> None:
        self.cloud.remove(self.bucket)
        self._write_state(ctx.stage_dir, [])


@dataclass
class Run:
    """One `doit` run in-process: its session (locks taken as `doit deploy` takes them)."""

    session: Session
    rt: Any

    @property
    def project(self) -> Any:
        return self.session.project


def start(root: Path, command: str = "deploy") -> Run:
    session = Session(root, ["doit", command], None)
    if session.load_error is not None:
        raise session.load_error
    session.hold_lock(command)
    from stagegraph.render import render_stage, write_stage

    project = session.project
    stage = project.graph[STATE_STAGE]  # rendered as `doit deploy` renders it first
    write_stage(project.output_root, render_stage(stage, project.config, project.lock, project.lockfile_name))
    return Run(session, session.runtime())


def end_of_process() -> None:
    """What the process's exit does to the shared locks it holds: release them."""
    for lock in list(shared_lock._held_locks.values()):
        lock.release()
    shared_lock._held_locks.clear()


@pytest.fixture
def fake_stage(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeStateStage], None]:
    import stagegraph.deploy
    import stagegraph.destroy

    def use(fake: FakeStateStage) -> None:
        real = stagegraph.deploy.driver_of

        def driver_of(stage: Any) -> Any:
            return fake if stage.name == STATE_STAGE else real(stage)

        monkeypatch.setattr(stagegraph.deploy, "driver_of", driver_of)
        monkeypatch.setattr(stagegraph.destroy, "driver_of", driver_of)

    yield use
    end_of_process()


def _bucket(run: Run) -> str:
    config = run.project.config
    return names.azure_container(config) if config.provider == "azure" else names.state_bucket(config)


def _folder(run: Run) -> str:
    return names.remote_folder(run.project.config)


def first_apply(
    where: Path, cloud: Cloud, fake_stage: Callable[[FakeStateStage], None]
) -> tuple[Run, FakeStateStage]:
    """A first machine's deploy of 01: the run (still holding its locks) and the fake 01."""
    from stagegraph.deploy import apply_stage

    run = start(clone(where, cloud))
    fake = FakeStateStage(cloud, _bucket(run))
    fake_stage(fake)
    apply_stage(run.rt, STATE_STAGE)
    return run, fake


def test_the_first_apply_moves_records_lock_and_state_into_the_bucket_and_a_fresh_clone_finds_them(
    tmp_path: Path, cloud: Cloud, fake_stage: Callable[[FakeStateStage], None]
) -> None:
    from stagegraph.deploy import apply_stage

    first = start(clone(tmp_path / "first", cloud))
    assert first.project.shared_store is None  # no bucket yet: records and lock on this machine
    bucket, folder = _bucket(first), _folder(first)
    fake = FakeStateStage(cloud, bucket)
    fake_stage(fake)
    apply_stage(first.rt, STATE_STAGE)
    assert fake.applies == 1

    stored = cloud.objects(bucket)
    local_state = (first.project.stage_dir(first.project.graph[STATE_STAGE]) / STATE_FILE).read_bytes()
    assert stored[f"{folder}/{STATE_OBJECT}"] == local_state
    assert json.loads(stored[f"{folder}/records/{STATE_STAGE}.json"])["status"] == "applied"
    assert f"{folder}/lock.json" in stored  # held by this run, in the bucket now
    assert RecordStore(first.project.state_dir).scan() == ({}, {})  # nothing left here
    end_of_process()
    assert f"{folder}/lock.json" not in cloud.objects(bucket)

    # A clone with an empty .stagegraph/ and no state file: everything comes from the bucket.
    second = start(clone(tmp_path / "second", cloud))
    second_state = second.project.stage_dir(second.project.graph[STATE_STAGE]) / STATE_FILE
    assert second_state.read_bytes() == local_state
    assert oct(second_state.stat().st_mode & 0o777) == "0o600"
    record = second.project.records.get(STATE_STAGE)
    assert record is not None and record.status == "applied"
    apply_stage(second.rt, STATE_STAGE)
    assert fake.applies == 1  # up to date: not applied again
    assert not (second.project.state_dir / "records").exists()


def test_a_run_killed_before_moving_in_leaves_records_here_that_the_next_run_moves(
    tmp_path: Path,
    cloud: Cloud,
    fake_stage: Callable[[FakeStateStage], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import stagegraph.sharedstate.bootstrap as bootstrap
    from stagegraph.deploy import apply_stage

    root = clone(tmp_path / "first", cloud)
    first = start(root)
    bucket, folder = _bucket(first), _folder(first)
    fake = FakeStateStage(cloud, bucket)
    fake_stage(fake)
    # Killed the moment 01's record was written here, before anything went to the bucket.
    real_after_apply = bootstrap.after_apply
    monkeypatch.setattr(bootstrap, "after_apply", lambda rt, stage: None)
    apply_stage(first.rt, STATE_STAGE)
    assert list(RecordStore(first.project.state_dir).scan()[0]) == [STATE_STAGE]
    assert cloud.objects(bucket) == {}
    end_of_process()
    monkeypatch.setattr(bootstrap, "after_apply", real_after_apply)

    # As a folder from a release before state locations were recorded: records here while the
    # config names a shared store read as "state on this machine" for any other store, not this one.
    (first.project.state_dir / "state-location.json").unlink()
    rerun = start(root)  # a new process: the bucket exists, the records go in at lock time
    stored = cloud.objects(bucket)
    assert json.loads(stored[f"{folder}/records/{STATE_STAGE}.json"])["status"] == "applied"
    assert f"{folder}/{STATE_OBJECT}" in stored
    assert RecordStore(rerun.project.state_dir).scan() == ({}, {})
    apply_stage(rerun.rt, STATE_STAGE)
    assert fake.applies == 1  # nothing re-applied: the record moved, it was not lost


def test_a_fresh_clone_reads_the_bucket_in_a_real_doit_status(
    tmp_path: Path, cloud: Cloud, fake_stage: Callable[[FakeStateStage], None]
) -> None:
    from sandboxproject import SandboxProject

    first_apply(tmp_path / "first", cloud, fake_stage)
    end_of_process()

    second = SandboxProject.create(tmp_path / "second")
    (second.root / "nebari-config.yaml").write_text(yaml.safe_dump(cloud.config))
    shown = second.doit("status")  # a user's command line, in a new process
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line[:2].isdigit()}
    assert "never applied" not in lines[STATE_STAGE], shown.stdout
    assert "never applied" in lines["02-infrastructure"]
    assert "Traceback" not in shown.stdout + shown.stderr
    assert (second.root / "stages" / STATE_STAGE / cloud.name / STATE_FILE).exists()


def test_a_live_holder_in_the_bucket_is_named_after_the_bounded_wait(
    tmp_path: Path, cloud: Cloud, fake_stage: Callable[[FakeStateStage], None]
) -> None:
    from stagegraph.errors import LockHeldError

    first, _ = first_apply(tmp_path / "first", cloud, fake_stage)
    root = first.session.root
    store = first.project.shared_store
    end_of_process()
    holder = {
        "pid": 4242,
        "host": "ci-runner-7",
        "user": "ci",
        "command": "deploy",
        "since": "2026-12-06T10:00:00Z",
        "lease_s": 60,
        "renewed": "2999-01-01T00:00:00.000000Z",
        "expires": "2999-01-01T00:01:00.000000Z",
    }
    assert store.create("lock.json", json.dumps(holder).encode()) is not None  # another machine's live lease
    config = dict(cloud.config, terraform_state={"type": "remote", "lock_wait_s": 0.5})
    (root / "nebari-config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(LockHeldError) as held:
        start(root)
    message = str(held.value)
    assert message.startswith(f"another stagegraph run holds the shared lock {store.describe('lock.json')}")
    assert "'deploy' by ci@ci-runner-7 pid 4242" in message and "waited 0.5s" in message


def test_01s_state_newer_here_is_pushed_older_here_is_replaced_another_lineage_is_refused(
    tmp_path: Path, cloud: Cloud, fake_stage: Callable[[FakeStateStage], None]
) -> None:
    first, _ = first_apply(tmp_path / "first", cloud, fake_stage)
    root, bucket, folder = first.session.root, _bucket(first), _folder(first)
    path = first.project.stage_dir(first.project.graph[STATE_STAGE]) / STATE_FILE
    end_of_process()

    def stored() -> dict[str, Any]:
        return dict(json.loads(cloud.objects(bucket)[f"{folder}/{STATE_OBJECT}"]))

    # Newer here (a hand `terraform apply` in the stage folder): the next run stores it.
    body = json.loads(path.read_text())
    newer = dict(body, serial=body["serial"] + 1)
    path.write_text(json.dumps(newer))
    start(root)
    end_of_process()
    assert stored() == newer
    # Older here (restored from a backup): the bucket's copy comes back.
    path.write_text(json.dumps(body))
    start(root)
    end_of_process()
    assert json.loads(path.read_text()) == newer
    # Another lineage here: refused in one line, neither copy touched.
    other = dict(newer, lineage=str(uuid.uuid4()), serial=99)
    path.write_text(json.dumps(other))
    with pytest.raises(StagegraphError) as refused:
        start(root)
    end_of_process()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: stage 01's state here (lineage {other['lineage']}) is not the one in")
    assert json.loads(path.read_text()) == other and stored() == newer
    assert "`doit forget_state 01-terraform-state` sets this one aside" in message
    # The way on it names: set this one aside; the next run takes the store's.
    from stagegraph.actions import do_forget_state

    do_forget_state(Session(root, ["doit", "forget_state"], None), [STATE_STAGE])
    end_of_process()
    assert list(path.parent.glob(f"{STATE_FILE}.forgotten-*"))
    start(root)
    end_of_process()
    assert json.loads(path.read_text()) == newer


def test_destroying_01_brings_the_last_records_home_and_a_new_deploy_starts_over(
    tmp_path: Path, cloud: Cloud, fake_stage: Callable[[FakeStateStage], None]
) -> None:
    from datetime import UTC, datetime

    from stagegraph.deploy import apply_stage
    from stagegraph.destroy import destroy_stage

    first, fake = first_apply(tmp_path / "first", cloud, fake_stage)
    root, bucket, folder = first.session.root, _bucket(first), _folder(first)
    # The stages after 01, destroyed before it (as `doit destroy` orders them), recorded in the bucket.
    first.project.records.record_destroyed("02-infrastructure", attempted_at=datetime.now(UTC))
    end_of_process()

    run = start(root, "destroy")
    destroy_stage(run.rt, STATE_STAGE)
    assert not run.project.shared_store  # the bucket is gone, and the lock in it
    end_of_process()  # releasing nothing there, and failing on nothing
    records, problems = RecordStore(run.project.state_dir).scan()
    assert problems == {}
    assert {name: r.status for name, r in records.items()} == {
        STATE_STAGE: "destroyed",
        "02-infrastructure": "destroyed",
    }

    again = start(root)
    assert again.project.shared_store is None  # no bucket: this machine holds the records again
    record = again.project.records.get(STATE_STAGE)
    assert record is not None and record.status == "destroyed"
    apply_stage(again.rt, STATE_STAGE)
    assert fake.applies == 2
    stored = cloud.objects(bucket)
    assert json.loads(stored[f"{folder}/records/{STATE_STAGE}.json"])["status"] == "applied"
    assert json.loads(stored[f"{folder}/records/02-infrastructure.json"])["status"] == "destroyed"
    assert RecordStore(again.project.state_dir).scan() == ({}, {})


def test_two_machines_that_both_applied_01_before_a_bucket_existed_keep_one_consistent_pair(
    tmp_path: Path, cloud: Cloud, fake_stage: Callable[[FakeStateStage], None]
) -> None:
    from stagegraph.deploy import apply_stage

    late = start(clone(tmp_path / "late", cloud))  # started before any bucket existed
    assert late.project.shared_store is None
    first, _ = first_apply(tmp_path / "first", cloud, fake_stage)
    bucket, folder = _bucket(first), _folder(first)
    end_of_process()
    before = cloud.objects(bucket)

    # The late machine's 01 "creates" the same bucket (the name is the config's) with a state of its own.
    fake_stage(FakeStateStage(cloud, bucket))
    with pytest.raises(StagegraphError) as refused:
        apply_stage(late.rt, STATE_STAGE)
    late_state = late.project.stage_dir(late.project.graph[STATE_STAGE]) / STATE_FILE
    assert str(refused.value).startswith(f"{late_state}: stage 01's state here (lineage ")
    end_of_process()
    # The bucket keeps the first machine's record and state; the late one's stay on its machine.
    after = cloud.objects(bucket)
    for name in (f"{folder}/{STATE_OBJECT}", f"{folder}/records/{STATE_STAGE}.json"):
        assert after[name] == before[name]
    assert list(RecordStore(late.project.state_dir).scan()[0]) == [STATE_STAGE]
