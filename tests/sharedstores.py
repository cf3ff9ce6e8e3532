"""The two shared-state stores the team tests run against, seen as a user would inspect them.

- `S3Shared`: a local S3 server (moto) on loopback; Terraform's S3 backend keeps each
  stage's state object in the bucket, stagegraph its records and lock beside it.
- `KubeShared`: the FAKE Kubernetes API (`kubefake`, TLS so that client-go sends the
  kubeconfig's token); Terraform's kubernetes backend keeps each stage's state in a Secret,
  stagegraph its records in ConfigMaps and its lock in a Lease, all in `default`.

Each answers the same questions (which stage has state, its record, whether the lock is
there) in the store's own terms, and points a project's config at its store.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from sandboxproject import SandboxProject

DEPLOYMENT = "demo-dev"  # project_name-namespace of the default config


@contextlib.contextmanager
def local_s3_server() -> Iterator[str]:
    """A local S3 server (moto) on a free loopback port; its endpoint URL."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


class Shared(Protocol):
    name: str
    env: dict[str, str]

    def configure(self, config: dict[str, Any], **state: Any) -> None: ...
    def state(self) -> dict[str, bytes]: ...
    def record(self, stage: str) -> dict[str, Any] | None: ...
    def records(self) -> list[str]: ...
    def lock_held(self) -> bool: ...
    def everything(self) -> dict[str, bytes]: ...
    def holder_args(self) -> list[str]: ...
    def where(self) -> str: ...


def point_at(project: SandboxProject, shared: Shared, **state: Any) -> SandboxProject:
    """Point the project's state (Terraform's and stagegraph's) at the shared store."""
    project.extra_env.update(shared.env)
    project.edit_config(lambda config: shared.configure(config, **state))
    return project


class S3Shared:
    name = "s3"

    def __init__(self, bucket: str, env: dict[str, str]) -> None:
        import boto3

        self.bucket = bucket
        self.env = env
        self._s3 = boto3.client("s3")

    def configure(self, config: dict[str, Any], **state: Any) -> None:
        config["terraform_state"] = {
            "type": "existing",
            "backend": "s3",
            "config": {
                "bucket": self.bucket,
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

    def everything(self) -> dict[str, bytes]:
        listed = self._s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {
            o["Key"]: self._s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read() for o in listed
        }

    def state(self) -> dict[str, bytes]:
        return {
            k.removeprefix("demo/").removesuffix(".tfstate").split("/")[0]: v
            for k, v in self.everything().items()
            if k.endswith(".tfstate")
        }

    def record(self, stage: str) -> dict[str, Any] | None:
        data = self.everything().get(f"demo/records/{stage}.json")
        return None if data is None else dict(json.loads(data))

    def records(self) -> list[str]:
        return sorted(k for k in self.everything() if k.startswith("demo/records/"))

    def lock_held(self) -> bool:
        return "demo/lock.json" in self.everything()

    def holder_args(self) -> list[str]:
        return ["s3", self.bucket]

    def where(self) -> str:
        return f"s3://{self.bucket}/demo/"


class KubeShared:
    name = "kube"

    def __init__(self, fake: Any, kubeconfig: Path) -> None:
        self.fake = fake
        self.kubeconfig = kubeconfig
        self.env: dict[str, str] = {}

    def configure(self, config: dict[str, Any], **state: Any) -> None:
        config["terraform_state"] = {
            "type": "existing",
            "backend": "kubernetes",
            "config": {"config_path": str(self.kubeconfig), "namespace": "default"},
            **state,
        }

    def _objects(self, plural: str, api: str = "v1") -> dict[str, dict[str, Any]]:
        return {n: self.fake.get(api, plural, "default", n) for n in self.fake.names(api, plural, "default")}

    def everything(self) -> dict[str, bytes]:
        """Every object's content as bytes: Secrets' data decoded (state gunzipped)."""
        out: dict[str, bytes] = {}
        for name, secret in self._objects("secrets").items():
            for key, value in (secret.get("data") or {}).items():
                raw = base64.b64decode(value)
                out[f"secret/{name}/{key}"] = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        for name, cm in self._objects("configmaps").items():
            out[f"configmap/{name}"] = json.dumps(cm.get("data") or {}).encode()
        for name, lease in self._objects("leases", "coordination.k8s.io/v1").items():
            out[f"lease/{name}"] = json.dumps(lease).encode()
        return out

    def state(self) -> dict[str, bytes]:
        prefix = f"secret/tfstate-default-{DEPLOYMENT}-"
        return {
            k.removeprefix(prefix).removesuffix("/tfstate"): v
            for k, v in self.everything().items()
            if k.startswith(prefix)
        }

    def record(self, stage: str) -> dict[str, Any] | None:
        cm = self.fake.get("v1", "configmaps", "default", f"stagegraph-{DEPLOYMENT}-{stage}")
        return None if cm is None else dict(json.loads(cm["data"]["record.json"]))

    def records(self) -> list[str]:
        return [n for n in self.fake.names("v1", "configmaps", "default") if n.startswith("stagegraph-")]

    def lock_held(self) -> bool:
        return (
            self.fake.get("coordination.k8s.io/v1", "leases", "default", f"stagegraph-{DEPLOYMENT}-lock")
            is not None
        )

    def holder_args(self) -> list[str]:
        return ["kube", str(self.kubeconfig)]

    def where(self) -> str:
        return "namespace default"


HOLDER = textwrap.dedent(
    """
    import sys, time
    from stagegraph.sharedstate.lock import Lease, SharedLock
    kind, arg, lease_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if kind == "s3":
        from stagegraph.sharedstate.s3 import S3Client, S3Location
        store = S3Client(S3Location(bucket=arg, prefix="demo", region="us-east-1", path_style=True))
    else:
        from stagegraph.kube.client import KubeTarget
        from stagegraph.sharedstate.kube import KubeLocation, KubeStore
        store = KubeStore(KubeLocation(KubeTarget(arg, None), "default", "demo-dev"))
    lock = SharedLock(store, "deploy", Lease(lease_s=lease_s, wait_s=0))
    lock.acquire()
    print("held", flush=True)
    time.sleep(120)
    """
)


def start_holder(shared: Shared, lease_s: float) -> subprocess.Popen[str]:
    """Another process, on this machine, holding the shared lock until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *shared.holder_args(), str(lease_s)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **shared.env},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc
