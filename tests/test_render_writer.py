"""Writing a render: only changed files, stale files removed, foreign files untouched."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from stagegraph.errors import RenderError
from stagegraph.render import MANIFEST, RenderedStage, is_current, read_manifest, serialize, write_stage


def _rendered(files: dict[str, Any], digest: str = "d1") -> RenderedStage:
    from pathlib import PurePosixPath

    return RenderedStage(
        "09-test", PurePosixPath("09-test"), {k: serialize(v) for k, v in files.items()}, {"code": digest}
    )


def test_writes_only_changed_files_and_removes_stale_ones(tmp_path: Path) -> None:
    first = write_stage(tmp_path, _rendered({"main.tf.json": {"a": 1}, "extra.tf.json": {"b": 2}}))
    assert first.written == ("extra.tf.json", "main.tf.json")
    stage_dir = tmp_path / "09-test"
    (stage_dir / "terraform.tfstate").write_text("{}")  # Terraform's, not ours
    os.utime(stage_dir / "main.tf.json", (1, 1))
    second = write_stage(tmp_path, _rendered({"main.tf.json": {"a": 1}}, "d2"))
    assert second.written == () and second.removed == ("extra.tf.json",)
    assert (stage_dir / "main.tf.json").stat().st_mtime == 1  # unchanged file not rewritten
    assert not (stage_dir / "extra.tf.json").exists()
    assert (stage_dir / "terraform.tfstate").read_text() == "{}"
    assert read_manifest(stage_dir)["files"].keys() == {"main.tf.json"}


def test_is_current_notices_inputs_and_hand_edits(tmp_path: Path) -> None:
    rendered = _rendered({"main.tf.json": {"a": 1}})
    write_stage(tmp_path, rendered)
    stage_dir = tmp_path / "09-test"
    assert is_current(stage_dir, rendered.digest)
    assert not is_current(stage_dir, _rendered({"main.tf.json": {"a": 1}}, "other").digest)
    (stage_dir / "main.tf.json").write_text("{}\n")
    assert not is_current(stage_dir, rendered.digest)


def test_failed_write_leaves_the_previous_render_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stage(tmp_path, _rendered({"main.tf.json": {"a": 1}, "b.tf.json": {"b": 1}}))
    stage_dir = tmp_path / "09-test"
    before = {p.name: p.read_bytes() for p in stage_dir.iterdir()}
    real_fsync = os.fsync
    calls = {"n": 0}

    def disk_full_on_second_file(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", disk_full_on_second_file)
    with pytest.raises(RenderError, match="09-test: cannot write rendered files: No space left on device"):
        write_stage(tmp_path, _rendered({"main.tf.json": {"a": 2}, "b.tf.json": {"b": 2}}, "d2"))
    after = {p.name: p.read_bytes() for p in stage_dir.iterdir()}
    assert after == before  # old files, old manifest, no temp files left behind


def test_canonical_json_is_stable() -> None:
    assert (
        serialize({"b": 1, "a": {"d": [2, 1], "c": "é"}})
        == b'{\n  "a": {\n    "c": "\xc3\xa9",\n    "d": [\n      2,\n      1\n    ]\n  },\n  "b": 1\n}\n'
    )
    assert MANIFEST.startswith(".")
