"""The bucket stage 01 creates, through the command line users type (aws, `type: remote`).

`tests/test_shared_bootstrap.py` runs every case on all three clouds in-process; this runs
the same life through `python -m doit` in new processes, where what happens at exit counts:
the lock in the bucket is released, and after 01 destroyed the bucket nothing fails trying.

Stand-ins, by name: the local S3 server (moto) on loopback for S3, and a FAKE stage 01
driver (below), brought in by a plugin the config imports from the deployment folder, as a
user's plugin would be. It replaces only how 01 is applied: Terraform with the real aws
provider cannot be downloaded here. It reads the bucket's name from 01's real render,
creates or deletes that bucket in the S3 stand-in, and writes the local state Terraform
would. Stages after 01 need the real cloud, so the deploys stop at 01 (`--stop-at`).
"""

from __future__ import annotations

import json
import shutil
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandboxproject import SandboxProject
from sharedstores import local_s3_server

pytestmark = [pytest.mark.e2e]
boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")

FIXTURE = Path(__file__).parent / "fixtures" / "configs" / "aws-typical.happy.yaml"
STATE_STAGE = "01-terraform-state"

FAKE_01 = '''
"""FAKE stage 01 driver for stagegraph's tests (see tests/test_shared_bootstrap_cli.py)."""
import dataclasses
import json
import uuid

import boto3

from stagegraph.driver import ApplyResult
from stagegraph.plugins.hookspecs import hookimpl
from stagegraph.stages.builtin import BUILTIN_STAGES

REAL = next(s for s in BUILTIN_STAGES if s.name == "01-terraform-state")


class FakeCloudStateDriver:
    def _bucket(self, ctx):
        render = json.loads((ctx.stage_dir / "main.tf.json").read_text())
        return render["resource"]["aws_s3_bucket"]["state"]["bucket"]

    def _write_state(self, ctx, resources):
        path = ctx.stage_dir / "terraform.tfstate"
        old = json.loads(path.read_text()) if path.exists() else {"lineage": str(uuid.uuid4()), "serial": 0}
        body = {"version": 4, "lineage": old["lineage"], "serial": old["serial"] + 1, "resources": resources}
        path.write_text(json.dumps(body))

    def apply(self, ctx):
        bucket = self._bucket(ctx)
        boto3.client("s3").create_bucket(Bucket=bucket)
        self._write_state(ctx, [{"type": "aws_s3_bucket", "name": "state", "id": bucket}])
        return ApplyResult(outputs={"state_backend": "s3", "backend_settings": {"bucket": bucket}})

    def destroy(self, ctx):
        s3, bucket = boto3.client("s3"), self._bucket(ctx)
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)  # force_destroy, as 01 renders it
        self._write_state(ctx, [])


@hookimpl
def stagegraph_stages():
    yield dataclasses.replace(REAL, priority=REAL.priority + 1, driver=FakeCloudStateDriver())
'''


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with local_s3_server() as url:
        env = {
            "AWS_ENDPOINT_URL_S3": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield env


def clone(where: Path, env: dict[str, str], config: dict[str, Any]) -> SandboxProject:
    """A fresh copy of the deployment folder as git holds it: config, pins, the plugin."""
    project = SandboxProject.create(where)
    project.extra_env.update(env)
    (project.root / "local").mkdir()
    (project.root / "local" / "fake01.py").write_text(textwrap.dedent(FAKE_01))
    (project.root / "nebari-config.yaml").write_text(yaml.safe_dump(config))
    return project


def _objects(bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_deploy_a_fresh_clone_and_destroy_through_the_command_line(
    tmp_path: Path, s3: dict[str, str]
) -> None:
    config: dict[str, Any] = yaml.safe_load(FIXTURE.read_text())
    config["project_name"] = f"t{uuid.uuid4().hex[:8]}"
    config["terraform_state"] = {"type": "remote"}
    config["security"]["authentication"] = {"type": "password"}  # auth is not under test
    config.setdefault("stagegraph", {})["plugins"] = {"import": ["local/fake01.py"]}
    bucket = f"{config['project_name']}-dev-terraform-state"
    folder = f"terraform/{config['project_name']}-dev"

    first = clone(tmp_path / "first", s3, config)
    run = first.doit("deploy", "--stop-at", STATE_STAGE)
    out = run.stdout + run.stderr
    assert "Traceback" not in out
    assert f"records, lock and this stage's state now live in s3://{bucket}/{folder}/" in out
    stored = _objects(bucket)
    assert sorted(stored) == [f"{folder}/records/{STATE_STAGE}.json", f"{folder}/state/{STATE_STAGE}.tfstate"]
    # The lock was taken in the bucket and released at exit; nothing is left on this machine.
    assert not list((first.state_dir / "records").glob("*.json"))

    second = clone(tmp_path / "second", s3, config)
    again = second.doit("deploy", "--stop-at", STATE_STAGE)
    assert f"[{STATE_STAGE}]" in again.stdout and "up to date" in again.stdout, again.stdout
    state = next(second.root.glob(f"stages/{STATE_STAGE}/aws/terraform.tfstate"))
    assert state.read_bytes() == stored[f"{folder}/state/{STATE_STAGE}.tfstate"]

    gone = second.doit("destroy")
    out = gone.stdout + gone.stderr
    assert "Traceback" not in out and "error" not in out.lower(), out
    assert bucket not in [b["Name"] for b in boto3.client("s3").list_buckets().get("Buckets", [])]
    record = json.loads((second.state_dir / "records" / f"{STATE_STAGE}.json").read_text())
    assert record["status"] == "destroyed"  # the last record is on the machine that destroyed it
    shutil.rmtree(first.root)


def test_render_before_the_first_deploy_needs_no_credentials_and_no_store(tmp_path: Path) -> None:
    config: dict[str, Any] = yaml.safe_load(FIXTURE.read_text())
    config["terraform_state"] = {"type": "remote"}
    config["security"]["authentication"] = {"type": "password"}
    # Nothing answers on port 9 and there are no credentials: any request to a store would fail.
    offline = {
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
    }
    project = clone(tmp_path / "new", offline, config)
    shown = project.doit("render")
    assert "Traceback" not in shown.stdout + shown.stderr
    backend = json.loads(next(project.root.glob("stages/02-infrastructure/aws/backend.tf.json")).read_text())
    assert backend["terraform"]["backend"]["s3"]["bucket"] == "awsdemo-dev-terraform-state"
