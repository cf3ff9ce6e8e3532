"""Terraform children never outlive their deploy, and hold its lock while they live
(issue 12 item 6), checked on the process machinery itself with stand-in commands.

A small Python program takes the project lock and starts a child through
`stagegraph.tfprocess.start`, exactly as a deploy starts Terraform; the test SIGKILLs that
program, which is what happens to a deploy killed with SIGKILL (no handler can run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stagegraph.errors import LockHeldError
from stagegraph.projectlock import ProjectLock
from stagegraph.tfprocess import ShuttingDownError, begin_shutdown, start

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux's")

PARENT = """
import sys, time
from pathlib import Path
from stagegraph.projectlock import hold_for_process
from stagegraph.tfprocess import start
root = Path(sys.argv[1])
hold_for_process(root, "deploy")
proc = start(sys.argv[2:], cwd=root, extra_env={})
(root / "child.pid").write_text(str(proc.pid))
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _run_parent(root: Path, *child: str) -> tuple[subprocess.Popen[bytes], int]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(root), *child])
    deadline = time.monotonic() + 30
    while not (root / "child.pid").exists():
        assert time.monotonic() < deadline, "the parent never started its child"
        assert parent.poll() is None, "the parent died"
        time.sleep(0.02)
    time.sleep(0.1)  # the pid file is written right after the start
    return parent, int((root / "child.pid").read_text())


def _wait_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_child_stops_when_its_deploy_is_killed(tmp_path: Path) -> None:
    parent, child = _run_parent(tmp_path, "sleep", "30")
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_gone(child, 5.0), "Terraform's stand-in outlived its SIGKILLed deploy"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_lock_stays_held_until_the_last_child_exits(tmp_path: Path) -> None:
    # A child that takes its time to stop (it ignores the SIGINT it gets), as Terraform
    # finishing the resource in flight does.
    parent, child = _run_parent(tmp_path, "sh", "-c", "trap '' INT; sleep 2")
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _alive(child)
        with pytest.raises(LockHeldError):
            ProjectLock(tmp_path, "second deploy").acquire()
        assert _wait_gone(child, 10.0)
        with ProjectLock(tmp_path, "second deploy"):
            pass  # free once the last child is gone
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_no_terraform_starts_once_shutdown_began(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stagegraph.tfprocess as tfprocess

    monkeypatch.setattr(tfprocess, "_stopping", type(tfprocess._stopping)())
    running = start(["sleep", "30"], cwd=tmp_path, extra_env={})
    try:
        assert begin_shutdown() == 1  # the running one was asked to stop (SIGINT)
        assert running.wait(5) == -signal.SIGINT
        with pytest.raises(ShuttingDownError, match="this run is stopping"):
            start(["true"], cwd=tmp_path, extra_env={})
    finally:
        if running.poll() is None:
            running.kill()
        tfprocess._untrack(running)
