"""Atomic writes: old or new content, never a mix, even when the writer is SIGKILLed."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stagegraph.atomic import remove_if_exists, write_atomic


def test_writes_then_skips_identical_content(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "file.json"
    assert write_atomic(target, '{"a": 1}\n') is True
    assert target.read_text() == '{"a": 1}\n'
    mtime = target.stat().st_mtime_ns
    assert write_atomic(target, b'{"a": 1}\n') is False
    assert target.stat().st_mtime_ns == mtime
    assert write_atomic(target, '{"a": 2}\n') is True
    assert target.read_text() == '{"a": 2}\n'
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]


def test_mode_is_exact_and_ignores_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_atomic(tmp_path / "private", "x", mode=0o600)
        write_atomic(tmp_path / "public", "x", mode=0o644)
    finally:
        os.umask(old)
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "public").stat().st_mode & 0o777 == 0o644


def test_private_content_is_never_readable_by_others_while_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):  # the temp file, its content already written
            seen.append(st.st_mode & 0o777)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_atomic(tmp_path / "secret.json", "s3cret", mode=0o600)
    assert seen == [0o600]


def test_same_content_with_wrong_mode_is_tightened(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("same")
    target.chmod(0o644)
    assert write_atomic(target, "same", mode=0o600) is False
    assert target.stat().st_mode & 0o777 == 0o600


def test_failure_keeps_old_file_and_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "r.json"
    write_atomic(target, "old")

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_remove_if_exists(tmp_path: Path) -> None:
    target = tmp_path / "gone"
    assert remove_if_exists(target) is False
    target.write_text("x")
    assert remove_if_exists(target) is True
    assert not target.exists()


# Two versions of different sizes (the unchanged-content check then costs nothing), so
# almost all of each loop is inside the dangerous window: temp file created, not renamed.
VERSIONS = [
    json.dumps({"version": "A", "pad": "x" * 400_000}),
    json.dumps({"version": "B", "pad": "y" * 400_001}),
]

HAMMER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from stagegraph.atomic import write_atomic

    target = Path(sys.argv[1])
    versions = [Path(p).read_text() for p in sys.argv[2:]]
    i = 0
    while True:
        write_atomic(target, versions[i % 2], mode=0o600)
        if i == 0:
            print("ready", flush=True)
        i += 1
    """
)


def test_sigkilled_writer_always_leaves_valid_old_or_new_content(tmp_path: Path) -> None:
    sources = []
    for n, text in enumerate(VERSIONS):
        sources.append(tmp_path / f"version-{n}.json")
        sources[-1].write_text(text)
    target = tmp_path / "records" / "stage.json"
    rng = random.Random(1234)
    for _ in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", HAMMER, str(target), *map(str, sources)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.08))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        text = target.read_text()
        assert text in VERSIONS  # exactly the old or the new version, never a mix
        json.loads(text)
        for leftover in target.parent.iterdir():
            assert leftover == target or (
                leftover.name.startswith(".stage.json.") and leftover.suffix == ".tmp"
            )
    # Kills that landed between creating the temp file and renaming it leave the temp file
    # behind: proof that the test hit the dangerous window, not just the gaps between writes.
    assert list(target.parent.glob(".stage.json.*.tmp"))
