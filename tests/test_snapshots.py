"""Snapshots kept per stage, and what a restore refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stagegraph.records import RecordStore
from stagegraph.snapshots import SnapshotError, list_snapshots, restore_stage, snapshot_stage


def test_only_the_newest_are_kept_and_zero_disables(tmp_path: Path) -> None:
    stage_dir = tmp_path / "stages" / "x"
    stage_dir.mkdir(parents=True)
    for i in range(4):
        (stage_dir / "terraform.tfstate").write_text(f"state {i}")
        snapshot_stage(tmp_path, "x", stage_dir, None, keep=2)
    snaps = list_snapshots(tmp_path, "x")
    assert len(snaps) == 2
    assert [(s.path / "terraform.tfstate").read_text() for s in snaps] == ["state 3", "state 2"]
    assert oct((snaps[0].path / "terraform.tfstate").stat().st_mode & 0o777) == "0o600"
    assert snapshot_stage(tmp_path, "x", stage_dir, None, keep=0) is None


def test_restore_refuses_a_snapshot_from_before_the_first_state(tmp_path: Path) -> None:
    stage_dir = tmp_path / "stages" / "x"
    stage_dir.mkdir(parents=True)
    record = RecordStore(tmp_path).record_failure("x", "boom", None)
    snapshot_stage(tmp_path, "x", stage_dir, record, keep=3)
    (stage_dir / "terraform.tfstate").write_text("created things")
    with pytest.raises(SnapshotError, match=r"before the stage had any state.*doit destroy:x"):
        restore_stage(tmp_path, "x", stage_dir, None, keep=3)


def test_restore_puts_back_a_missing_record(tmp_path: Path) -> None:
    stage_dir = tmp_path / "stages" / "x"
    stage_dir.mkdir(parents=True)
    (stage_dir / "terraform.tfstate").write_text("v1")
    snapshot_stage(tmp_path, "x", stage_dir, None, keep=3)
    store = RecordStore(tmp_path)
    store.record_success("x", fingerprint="f", inputs={}, outputs={}, attempted_at=datetime.now(UTC))
    (stage_dir / "terraform.tfstate").write_text("v2")
    chosen, undo = restore_stage(tmp_path, "x", stage_dir, None, keep=3)
    assert chosen.state_files == ("terraform.tfstate",) and not chosen.had_record
    assert (stage_dir / "terraform.tfstate").read_text() == "v1"
    assert store.get("x") is None  # the snapshot was taken when the stage had no record
    assert undo is not None and (undo.path / "terraform.tfstate").read_text() == "v2"
    with pytest.raises(SnapshotError, match="no snapshot 'nope'"):
        restore_stage(tmp_path, "x", stage_dir, "nope", keep=3)
