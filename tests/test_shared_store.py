"""The shared store's conditional writes and the lease, without Terraform.

The Kubernetes store runs against the FAKE Kubernetes API (`kubefake`, over TLS, through a
real kubeconfig and the real `kubernetes` client); the lock's loss of renewals runs
against `FlakyStore`, an in-memory stand-in whose writes can be made to fail.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubefake import FakeKube

from stagegraph.errors import LockHeldError, StagegraphError
from stagegraph.kube.client import KubeTarget
from stagegraph.sharedstate.kube import KubeLocation, KubeStore
from stagegraph.sharedstate.lock import Lease, LockLostError, SharedLock
from stagegraph.sharedstate.store import LOCK_OBJECT, ConditionalStore, Versioned


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube(tls=True) as server:
        yield server


def store_for(fake: FakeKube, tmp_path: Path, deployment: str = "demo-dev") -> KubeStore:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    return KubeStore(KubeLocation(KubeTarget(str(kubeconfig), None), "default", deployment))


def test_records_are_configmaps_written_only_at_the_version_read(fake: FakeKube, tmp_path: Path) -> None:
    store = store_for(fake, tmp_path)
    name = "records/07-kubernetes-services.json"
    first = store.create(name, b'{"n": 1}')
    assert first is not None
    assert store.create(name, b'{"n": 2}') is None  # exists: the second creator loses
    got = store.get(name)
    assert got == Versioned(b'{"n": 1}', first)
    second = store.replace(name, b'{"n": 3}', first)
    assert second is not None and second != first
    assert store.replace(name, b'{"n": 4}', first) is None  # stale version: refused
    assert store.delete(name, first) is False  # stale version: kept
    cm = fake.get("v1", "configmaps", "default", "stagegraph-demo-dev-07-kubernetes-services")
    assert cm is not None and json.loads(cm["data"]["record.json"]) == {"n": 3}
    assert cm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "stagegraph"
    # Another deployment's records in the same namespace are not this one's.
    store_for(fake, tmp_path, "other-dev").create("records/01-terraform-state.json", b"{}")
    assert store.list("records") == ["07-kubernetes-services.json"]
    assert store.delete(name, second) is True and store.get(name) is None
    assert store.requests == 9  # one request per call: nothing cached, nothing retried


def test_a_missing_namespace_is_named_not_taken_for_a_held_lock(fake: FakeKube, tmp_path: Path) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    store = KubeStore(KubeLocation(KubeTarget(str(kubeconfig), None), "team-state", "demo-dev"))
    lock = SharedLock(store, "deploy", Lease(lease_s=30, wait_s=0))
    with pytest.raises(StagegraphError) as caught:
        lock.acquire()
    message = str(caught.value)
    assert "namespace team-state" in message and "the namespace does not exist" in message
    assert "terraform_state.config.namespace" in message and "holds the" not in message


def test_a_plugin_stage_name_that_is_no_dns_name_gets_a_safe_unique_configmap(
    fake: FakeKube, tmp_path: Path
) -> None:
    store = store_for(fake, tmp_path)
    for stage in ("Custom_Stage", "custom-stage"):
        assert store.create(f"records/{stage}.json", stage.encode()) is not None
    assert sorted(store.list("records")) == ["Custom_Stage.json", "custom-stage.json"]
    assert store.get("records/Custom_Stage.json") is not None


def test_the_lock_is_a_lease_kubectl_can_read(fake: FakeKube, tmp_path: Path) -> None:
    store = store_for(fake, tmp_path)
    lock = SharedLock(store, "deploy", Lease(lease_s=30, wait_s=0))
    lock.acquire()
    try:
        lease = fake.get("coordination.k8s.io/v1", "leases", "default", "stagegraph-demo-dev-lock")
        assert lease is not None
        spec = lease["spec"]
        assert spec["holderIdentity"].endswith(f"pid {lock._holder['pid']}")
        assert spec["leaseDurationSeconds"] == 30
        assert spec["renewTime"].endswith("Z") and spec["acquireTime"].endswith(".000000Z")
        with pytest.raises(LockHeldError) as held:
            SharedLock(store, "plan", Lease(lease_s=30, wait_s=0)).acquire()
        assert "'deploy' by" in str(held.value) and "lease stagegraph-demo-dev-lock" in str(held.value)
    finally:
        lock.release()
    assert fake.get("coordination.k8s.io/v1", "leases", "default", "stagegraph-demo-dev-lock") is None


class FlakyStore(ConditionalStore):
    """An in-memory stand-in for a store; `failing` makes every write raise, as a store
    that cannot be reached does."""

    def __init__(self) -> None:
        self.objects: dict[str, Versioned] = {}
        self.failing = False
        self._n = 0

    def _version(self) -> str:
        self._n += 1
        return str(self._n)

    def describe(self, name: str = "") -> str:
        return f"memory:{name}"

    def get(self, name: str) -> Versioned | None:
        return self.objects.get(name)

    def create(self, name: str, data: bytes) -> str | None:
        if name in self.objects:
            return None
        self.objects[name] = Versioned(data, self._version())
        return self.objects[name].version

    def replace(self, name: str, data: bytes, version: str) -> str | None:
        if self.failing:
            raise StagegraphError("memory: connection refused")
        if name not in self.objects or self.objects[name].version != version:
            return None
        self.objects[name] = Versioned(data, self._version())
        return self.objects[name].version

    def delete(self, name: str, version: str | None = None) -> bool:
        return self.objects.pop(name, None) is not None

    def list(self, folder: str) -> list[str]:
        return []


def test_a_holder_that_cannot_renew_before_its_lease_ends_has_lost_the_lock() -> None:
    from stagegraph.sharedstate import lock as lockmod

    store = FlakyStore()
    lock = SharedLock(store, "deploy", Lease(lease_s=0.6, wait_s=0))
    lock.acquire()
    time.sleep(0.3)
    assert lock.lost is None  # renewed once at least
    store.failing = True
    deadline = time.monotonic() + 5
    while lock.lost is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.lost == (
        "memory:lock.json: the shared lock could not be renewed before its lease ran out "
        "(memory: connection refused)"
    )
    lockmod._held_locks["memory"] = lock
    try:
        with pytest.raises(LockLostError) as refused:
            lockmod.refuse_if_lost()
        assert str(refused.value).endswith("this run started no stage after that and stops here")
    finally:
        del lockmod._held_locks["memory"]
    lock.release()
    assert LOCK_OBJECT in store.objects  # a run that lost the lock leaves it to the new holder


# --- the fake API answers as the real one does ---------------------------------------------------


def _call(fake: FakeKube, method: str, path: str, body: object = None) -> tuple[int, dict[str, object]]:
    import ssl

    context = ssl.create_default_context(cadata=(fake.ca_pem or b"").decode())
    request = urllib.request.Request(
        fake.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {fake.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, context=context) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_fake_updates_secrets_only_at_their_resource_version(fake: FakeKube) -> None:
    path = "/api/v1/namespaces/default/secrets"
    code, made = _call(fake, "POST", path, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert code == 201 and made["data"] == {"k": "dg=="}  # stringData folded into base64 data
    meta = made["metadata"]
    assert isinstance(meta, dict)
    update = {"metadata": {"name": "s", "resourceVersion": meta["resourceVersion"]}, "data": {"k": "dw=="}}
    code, updated = _call(fake, "PUT", f"{path}/s", update)
    assert code == 200 and updated["data"] == {"k": "dw=="}
    assert updated["metadata"]["resourceVersion"] != meta["resourceVersion"]  # type: ignore[index]
    code, stale = _call(fake, "PUT", f"{path}/s", update)
    assert (code, stale["reason"]) == (409, "Conflict")
    assert "the object has been modified" in str(stale["message"])
    code, missing = _call(fake, "PUT", f"{path}/gone", {"metadata": {"name": "gone"}})
    assert (code, missing["reason"]) == (404, "NotFound")
    code, bad = _call(fake, "POST", path, {"metadata": {"name": "b"}, "data": {"k": "not base64!"}})
    assert (code, bad["reason"]) == (400, "BadRequest")
    code, refused = _call(
        fake, "DELETE", f"{path}/s", {"kind": "DeleteOptions", "preconditions": {"resourceVersion": "1"}}
    )
    assert (code, refused["reason"]) == (409, "Conflict")
    assert fake.unknown == []
    _call(fake, "GET", "/apis/coordination.k8s.io/v2/namespaces/default/leases")
    assert fake.unknown == [("GET", "/apis/coordination.k8s.io/v2/namespaces/default/leases")]


def test_an_unreadable_shared_record_is_named_by_its_configmap_and_stage(
    fake: FakeKube, tmp_path: Path
) -> None:
    from stagegraph.sharedstate.records import SharedRecordStore

    store = store_for(fake, tmp_path)
    store.create("records/05-kubernetes-keycloak.json", b"{not json")
    with pytest.raises(StagegraphError) as err:
        SharedRecordStore(store).get("05-kubernetes-keycloak")
    message = str(err.value)
    assert message.startswith("configmap stagegraph-demo-dev-05-kubernetes-keycloak in namespace default")
    assert message.endswith(
        "delete it to make the next deploy re-apply stage 05-kubernetes-keycloak (terraform state is kept, "
        "so the re-apply is safe)"
    )
