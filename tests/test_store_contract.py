"""One contract for every shared-state store: conditional writes, the lock, shared records.

The same tests run against each store, through its real client library:
- `s3`: a local S3 server (moto) on loopback, through boto3;
- `kube`: the FAKE Kubernetes API (`kubefake`), through the kubernetes client;
- `gcs`: the FAKE GCS JSON API (`gcsfake`), through google-auth's authorized session;
- `azure`: the FAKE Azure Blob service (`azureblobfake`), through azure-storage-blob.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azureblobfake import ACCOUNT_KEY, FakeAzureBlob
from gcsfake import FakeGCS
from kubefake import FakeKube

from stagegraph.errors import LockHeldError, StagegraphError
from stagegraph.sharedstate.lock import Lease, SharedLock
from stagegraph.sharedstate.records import SharedRecordStore
from stagegraph.sharedstate.store import LOCK_OBJECT, ConditionalStore

#: A store factory: each call is another machine's client of the same store.
Opener = Callable[[], ConditionalStore]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    pytest.importorskip("moto.server")
    from sharedstores import local_s3_server

    with local_s3_server() as url:
        yield url


@pytest.fixture(params=["s3", "kube", "gcs", "azure"])
def opener(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Opener]:
    if request.param == "s3":
        import boto3

        from stagegraph.sharedstate.s3 import S3Client, S3Location

        endpoint = request.getfixturevalue("moto_endpoint")
        for name, value in {
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        bucket = f"team-{uuid.uuid4().hex[:12]}"
        boto3.client("s3").create_bucket(Bucket=bucket)
        yield lambda: S3Client(S3Location(bucket, "demo", "us-east-1", path_style=True))
        return
    if request.param == "kube":
        from stagegraph.kube.client import KubeTarget
        from stagegraph.sharedstate.kube import KubeLocation, KubeStore

        with FakeKube(tls=True) as kube:
            kubeconfig = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
            yield lambda: KubeStore(KubeLocation(KubeTarget(kubeconfig, None), "default", "demo-dev"))
            assert kube.unknown == []
        return
    if request.param == "gcs":
        from stagegraph.sharedstate.gcs import GCSLocation, GCSStore

        with FakeGCS() as gcs:
            gcs.page_size = 3
            settings = (("storage_custom_endpoint", f"{gcs.url}/storage/v1/"), ("access_token", gcs.token))
            yield lambda: GCSStore(GCSLocation("state", "demo", settings))
            assert gcs.unknown == []
        return
    from stagegraph.sharedstate.azureblob import ENDPOINT_ENV, AzureBlobLocation, AzureBlobStore

    with FakeAzureBlob() as azure:
        azure.page_size = 3
        monkeypatch.setenv(ENDPOINT_ENV, azure.url)
        monkeypatch.setenv("ARM_ACCESS_KEY", ACCOUNT_KEY)
        yield lambda: AzureBlobStore(AzureBlobLocation(azure.account, "state", "demo"))
        assert azure.unknown == []


def _holder(store: ConditionalStore, command: str = "deploy") -> bytes:
    """A lock body as a run writes it (the Kubernetes store maps it onto a Lease's fields)."""
    return SharedLock(store, command, Lease(lease_s=30, wait_s=0))._body()


def test_writes_happen_only_at_the_version_read(opener: Opener) -> None:
    store = opener()
    name = "records/07-kubernetes-services.json"
    assert store.get(name) is None
    first = store.create(name, b'{"n": 1}')
    assert first is not None
    assert store.create(name, b'{"n": 2}') is None  # exists: a second creator loses
    got = store.get(name)
    assert got is not None and (got.data, got.version) == (b'{"n": 1}', first)
    second = store.replace(name, b'{"n": 3}', first)
    assert second is not None and second != first
    assert store.replace(name, b'{"n": 4}', first) is None  # stale version: refused
    assert store.replace("records/absent.json", b"{}", first) is None  # nothing to replace
    assert store.delete(name, first) is False  # stale version: kept
    got = store.get(name)
    assert got is not None and json.loads(got.data) == {"n": 3}
    assert store.delete(name, second) is True
    assert store.get(name) is None
    store.delete(name)  # gone already: no error (S3 answers 204 to any unconditional delete)


STAGES = [f"{n:02d}-stage" for n in range(1, 8)]


def test_list_names_only_the_records_of_the_folder(opener: Opener) -> None:
    store = opener()
    for stage in STAGES:
        assert store.create(f"records/{stage}.json", b"{}") is not None
    assert store.create(LOCK_OBJECT, _holder(store)) is not None
    # GCS and Azure answer in pages of 3 here (see `opener`): all pages are read.
    assert sorted(store.list("records")) == [f"{stage}.json" for stage in STAGES]


def test_of_many_simultaneous_creators_exactly_one_wins(opener: Opener) -> None:
    stores = [opener() for _ in range(6)]
    won: list[str | None] = [None] * len(stores)
    start = threading.Barrier(len(stores))
    bodies = [_holder(store, f"deploy {i}") for i, store in enumerate(stores)]

    def race(i: int) -> None:
        start.wait(timeout=30)
        won[i] = stores[i].create(LOCK_OBJECT, bodies[i])

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [i for i, version in enumerate(won) if version is not None]
    assert len(winners) == 1
    got = opener().get(LOCK_OBJECT)
    assert got is not None and got.version == won[winners[0]]
    assert json.loads(got.data)["command"] == f"deploy {winners[0]}"


def test_the_lock_names_its_holder_and_is_released(opener: Opener) -> None:
    lock = SharedLock(opener(), "deploy", Lease(lease_s=30, wait_s=0))
    lock.acquire()
    try:
        with pytest.raises(LockHeldError) as held:
            SharedLock(opener(), "plan", Lease(lease_s=30, wait_s=0)).acquire()
        message = str(held.value)
        assert f"pid {lock._holder['pid']}" in message and "'deploy' by" in message
        assert opener().describe(LOCK_OBJECT) in message
    finally:
        lock.release()
    assert opener().get(LOCK_OBJECT) is None


def test_a_dead_holders_lease_expires_and_is_taken_over_by_one_run(opener: Opener) -> None:
    dead = SharedLock(opener(), "deploy", Lease(lease_s=1.0, wait_s=0))
    dead.acquire()
    dead._stop.set()  # it stops renewing, as a holder killed with SIGKILL does
    assert dead._thread is not None
    dead._thread.join(timeout=5)
    with pytest.raises(LockHeldError):  # still live: refused
        SharedLock(opener(), "deploy", Lease(lease_s=30, wait_s=0)).acquire()
    time.sleep(1.2)
    taker = SharedLock(opener(), "deploy", Lease(lease_s=30, wait_s=5))
    taker.acquire()
    try:
        got = opener().get(LOCK_OBJECT)
        assert got is not None and json.loads(got.data)["lease_s"] == 30
        # The dead holder's version is stale: it can neither renew nor release the new lock.
        assert dead._version is not None
        assert dead.store.replace(LOCK_OBJECT, _holder(dead.store), dead._version) is None
        assert dead.store.delete(LOCK_OBJECT, dead._version) is False
    finally:
        taker.release()
    assert opener().get(LOCK_OBJECT) is None


def _record(records: SharedRecordStore, stage: str, fingerprint: str) -> None:
    records.record_success(
        stage,
        fingerprint=fingerprint,
        inputs={"config": "sha256:abc"},
        outputs={"endpoint": "https://hub.example.org"},
        attempted_at=datetime.now(UTC),
    )


def test_two_clones_share_records_through_the_store(opener: Opener) -> None:
    first, second = SharedRecordStore(opener()), SharedRecordStore(opener())
    assert second.get("07-kubernetes-services") is None
    _record(first, "07-kubernetes-services", "f1")
    _record(first, "02-infrastructure", "i1")
    seen = second.get("07-kubernetes-services")
    assert (
        seen is not None
        and seen.fingerprint == "f1"
        and seen.outputs == {"endpoint": "https://hub.example.org"}
    )
    records, problems = second.scan()
    assert sorted(records) == ["02-infrastructure", "07-kubernetes-services"] and problems == {}
    # The second clone deploys a change; the first sees it on its next read.
    _record(second, "07-kubernetes-services", "f2")
    again = first.get("07-kubernetes-services")
    assert again is not None and again.fingerprint == "f2"


def test_a_record_changed_behind_a_runs_back_is_not_overwritten(opener: Opener) -> None:
    """A run that lost its lock cannot silently overwrite what the new holder recorded."""
    stale, other = SharedRecordStore(opener()), SharedRecordStore(opener())
    _record(stale, "05-kubernetes-keycloak", "old")
    _record(other, "05-kubernetes-keycloak", "new")
    with pytest.raises(StagegraphError) as refused:
        _record(stale, "05-kubernetes-keycloak", "late")
    assert "another run changed this record" in str(refused.value)
    kept = other.get("05-kubernetes-keycloak")
    assert kept is not None and kept.fingerprint == "new"
