"""The project lock, between real processes: refusal at once, release on SIGKILL, nesting."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagegraph.errors import DeployError, LockHeldError
from stagegraph.projectlock import ProjectLock, hold_for_process, read_holder

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from stagegraph.projectlock import ProjectLock

    lock = ProjectLock(Path(sys.argv[1]), sys.argv[2]).acquire()
    print("locked", flush=True)
    time.sleep(60)
    """
)

TRY = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from stagegraph.errors import LockHeldError
    from stagegraph.projectlock import ProjectLock

    try:
        with ProjectLock(Path(sys.argv[1]), "probe"):
            print("acquired")
    except LockHeldError as exc:
        print("refused:", exc)
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), "deploy"], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    yield child
    child.kill()
    child.wait()
    child.stdout.close()


def _other_process_try(root: Path) -> str:
    out = subprocess.run([sys.executable, "-c", TRY, str(root)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_second_process_is_refused_at_once_naming_the_holder(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    t0 = time.monotonic()
    with pytest.raises(LockHeldError) as info:
        ProjectLock(tmp_path, "destroy").acquire()
    assert time.monotonic() - t0 < 1.0
    assert isinstance(info.value, DeployError)
    message = str(info.value)
    pattern = (
        rf"another stagegraph run holds the lock: 'deploy' by \S+@{re.escape(socket.gethostname())} "
        rf"pid {holder.pid} since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ; wait for it to finish "
        r"\(the lock frees itself if that process dies\)"
    )
    assert re.fullmatch(pattern, message), message


def test_sigkilled_holder_frees_the_lock(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    # lock.json of the dead holder is still there; it must not matter.
    stale = read_holder(tmp_path)
    assert stale is not None and stale.pid == holder.pid
    with ProjectLock(tmp_path, "deploy") as lock:
        assert lock.held
        mine = read_holder(tmp_path)
        assert mine is not None and mine.pid == os.getpid() and mine.command == "deploy"
    assert not (tmp_path / "lock.json").exists()


def test_holder_info_file(tmp_path: Path) -> None:
    with ProjectLock(tmp_path, "render"):
        data = json.loads((tmp_path / "lock.json").read_text())
    assert set(data) == {"pid", "host", "user", "command", "since"}
    assert data["pid"] == os.getpid() and data["command"] == "render"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["since"])


def test_nested_acquire_in_one_process_is_counted(tmp_path: Path) -> None:
    outer = ProjectLock(tmp_path, "deploy").acquire()
    inner = ProjectLock(tmp_path, "deploy").acquire()  # another task of the same run
    inner.acquire()
    inner.release()
    inner.release()
    assert _other_process_try(tmp_path).startswith("refused: another stagegraph run holds the lock: 'deploy'")
    outer.release()
    assert not (tmp_path / "lock.json").exists()
    assert _other_process_try(tmp_path) == "acquired"


def test_release_without_acquire_is_a_bug(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="released more often than acquired"):
        ProjectLock(tmp_path, "deploy").release()


def test_missing_holder_info_still_refuses_clearly(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    (tmp_path / "lock.json").unlink()
    t0 = time.monotonic()
    with pytest.raises(LockHeldError, match=r"has not recorded who it is\); wait for it to finish"):
        ProjectLock(tmp_path, "deploy").acquire()
    assert time.monotonic() - t0 < 1.0


def test_hold_for_process_takes_the_lock_once(tmp_path: Path) -> None:
    first = hold_for_process(tmp_path, "deploy")
    assert hold_for_process(tmp_path, "deploy") is first
    assert "refused: another stagegraph run holds the lock: 'deploy'" in _other_process_try(tmp_path)
    while first.held:  # tidy up: normally this happens at exit
        first.release()
    assert _other_process_try(tmp_path) == "acquired"


def _forked_child(root: str, queue: multiprocessing.Queue[str]) -> None:
    try:
        ProjectLock(Path(root), "child").acquire()
        queue.put("acquired")
    except LockHeldError:
        queue.put("refused")


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_forked_child_neither_holds_nor_frees_the_parents_lock(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ProjectLock(tmp_path, "deploy"):
        queue: multiprocessing.Queue[str] = ctx.Queue()
        child = ctx.Process(target=_forked_child, args=(str(tmp_path), queue))
        child.start()
        child.join(10)
        assert queue.get(timeout=5) == "refused"
        # The child closed its inherited descriptor on fork; the parent still holds the lock.
        assert _other_process_try(tmp_path).startswith("refused:")
    assert _other_process_try(tmp_path) == "acquired"
