"""Deploy records: last success is kept across failures; corruption gives a clear error."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stagegraph.errors import StagegraphError
from stagegraph.records import PlanInfo, RecordError, RecordStore, StageRecord

T0 = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)


def _success(store: RecordStore, stage: str = "04-kubernetes-ingress", fp: str = "fp-1") -> StageRecord:
    return store.record_success(
        stage,
        fingerprint=fp,
        inputs={"file:main.tf.json": "aaa", "upstream:03-kubernetes-initialize": "bbb"},
        outputs={"load_balancer_ip": "10.0.0.1"},
        attempted_at=T0,
        duration_s=2.345678,
        log="/tmp/x.log",
        runner="terraform 1.11.4",
        init_digest="init-1",
        applied_at=T0 + timedelta(seconds=3),
    )


def test_roundtrip_and_private_file(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    assert store.get("04-kubernetes-ingress") is None
    written = _success(store)
    path = tmp_path / "records" / "04-kubernetes-ingress.json"
    assert path.stat().st_mode & 0o777 == 0o600
    again = RecordStore(tmp_path).get("04-kubernetes-ingress")
    assert again == written
    assert again is not None and again.duration_s == 2.346
    assert again.applied_at == T0 + timedelta(seconds=3)
    assert store.all() == {"04-kubernetes-ingress": written}


def test_failure_keeps_last_success(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    ok = _success(store)
    failed = store.record_failure(
        "04-kubernetes-ingress",
        "Error: timeout\nwith details on line two",
        Path("/tmp/apply.log"),
        attempted_at=T0 + timedelta(hours=1),
        duration_s=9.0,
    )
    assert failed.status == "failed"
    assert failed.error == "Error: timeout"
    assert failed.log == "/tmp/apply.log"
    # Staleness stays judged against the last success.
    assert failed.fingerprint == ok.fingerprint
    assert failed.inputs == ok.inputs
    assert failed.outputs == ok.outputs
    assert failed.applied_at == ok.applied_at
    assert failed.init_digest == ok.init_digest
    assert store.get("04-kubernetes-ingress") == failed
    # A second failure still keeps the success, not the first failure's data.
    again = store.record_failure("04-kubernetes-ingress", "", None)
    assert again.fingerprint == "fp-1" and again.error == "failed (no message)"
    # Success again clears the error.
    assert _success(store, fp="fp-2").error is None


def test_failure_without_previous_success(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rec = store.record_failure("05-kubernetes-keycloak", "boom", None)
    assert rec.status == "failed" and rec.fingerprint is None and rec.applied_at is None
    assert rec.inputs == {} and rec.outputs == {}


def test_destroyed_drops_fingerprint_and_outputs(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    ok = _success(store)
    gone = store.record_destroyed("04-kubernetes-ingress", duration_s=1.0)
    assert gone.status == "destroyed"
    assert gone.fingerprint is None and gone.outputs == {} and gone.plan is None
    assert gone.inputs == ok.inputs  # `why` can still tell what it was built from


def test_plan_info_roundtrips_through_model_dump(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rec = _success(store).model_copy(
        update={
            "plan": PlanInfo(path="/x/stagegraph.tfplan", fingerprint="fp-9", used_mock=True, created_at=T0)
        }
    )
    store.put(StageRecord.model_validate(rec.model_dump()))
    loaded = store.get("04-kubernetes-ingress")
    assert loaded is not None and loaded.plan is not None and loaded.plan.used_mock is True


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "Invalid JSON"),
        ('{"stage": "04-kubernetes-ingress"}', "status: Field required"),
        ("", "Invalid JSON"),
    ],
)
def test_corrupt_record_names_file_and_fix(tmp_path: Path, content: str, problem: str) -> None:
    store = RecordStore(tmp_path)
    _success(store, stage="03-kubernetes-initialize")
    path = tmp_path / "records" / "04-kubernetes-ingress.json"
    path.write_text(content)
    with pytest.raises(RecordError) as info:
        store.get("04-kubernetes-ingress")
    message = str(info.value)
    assert isinstance(info.value, StagegraphError)
    assert message.startswith(f"{path}: unreadable deploy record (")
    assert problem in message
    assert "delete this file" in message and "re-apply stage 04-kubernetes-ingress" in message
    # Deploys fail clearly...
    with pytest.raises(RecordError):
        store.all()
    # ...status views still show everything else.
    records, problems = store.scan()
    assert list(records) == ["03-kubernetes-initialize"]
    assert list(problems) == ["04-kubernetes-ingress"]


def test_record_of_another_stage_or_unknown_field_is_corrupt(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    ok = _success(store)
    other = tmp_path / "records" / "05-kubernetes-keycloak.json"
    other.write_text(ok.model_dump_json())
    with pytest.raises(RecordError, match="record of stage '04-kubernetes-ingress'"):
        store.get("05-kubernetes-keycloak")
    other.write_text(ok.model_dump_json()[:-1] + ', "surprise": 1}')
    with pytest.raises(RecordError, match="surprise"):
        store.get("05-kubernetes-keycloak")


def test_unreadable_record(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    (tmp_path / "records" / "04-kubernetes-ingress.json").mkdir(parents=True)  # EISDIR
    with pytest.raises(RecordError, match="unreadable deploy record"):
        store.get("04-kubernetes-ingress")


def test_failure_replaces_a_corrupt_record(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    path = tmp_path / "records" / "04-kubernetes-ingress.json"
    path.parent.mkdir(parents=True)
    path.write_text("garbage")
    rec = store.record_failure("04-kubernetes-ingress", "boom", None)
    assert store.get("04-kubernetes-ingress") == rec


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", ""])
def test_stage_names_that_are_not_one_path_component_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(StagegraphError, match="cannot name a record file"):
        RecordStore(tmp_path).get(name)


def test_temp_files_are_not_records(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    _success(store)
    (tmp_path / "records" / ".04-kubernetes-ingress.json.abc123.tmp").write_text("{")
    assert list(store.all()) == ["04-kubernetes-ingress"]


def test_threads_writing_their_own_stages(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)

    def work(i: int) -> None:
        for n in range(20):
            if n % 3 == 2:
                store.record_failure(f"stage-{i}", f"fail {n}", None)
            else:
                _success(store, stage=f"stage-{i}", fp=f"fp-{n}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = store.all()
    assert len(records) == 8
    assert all(r.fingerprint == "fp-19" for r in records.values())


def test_reading_500_records_gives_each_back(tmp_path: Path) -> None:
    # How long this takes is `doit bench`'s business; a test checks what comes back.
    store = RecordStore(tmp_path)
    base = _success(store)
    for i in range(500):
        store.put(base.model_copy(update={"stage": f"stage-{i:03d}"}))
    records = RecordStore(tmp_path).all()
    assert len(records) == 501
    assert records["stage-123"] == base.model_copy(update={"stage": "stage-123"})
