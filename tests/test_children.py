"""Terraform children never outlive their deploy, and hold its lock while they live
(issue 12 item 6), checked on the process machinery itself with stand-in commands.

A small Python program takes the project lock and starts a child through
`stagegraph.tfprocess.start`, exactly as a deploy starts Terraform; the test SIGKILLs that
program, which is what happens to a deploy killed with SIGKILL (no handler can run).
"""

from __future__ import annotations

import contextlib
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


def test_what_terraform_left_running_goes_when_its_deploy_is_killed(tmp_path: Path) -> None:
    # A provisioner's background job: its shell (Terraform's stand-in) stops on the SIGINT,
    # the job ignores SIGINT (as a non-interactive shell's background jobs do) and would
    # live on, reparented to init, holding the lock, but for the watchdog.
    script = "sleep 300 & echo $! > job.pid; wait"
    parent, child = _run_parent(tmp_path, "sh", "-c", script)
    deadline = time.monotonic() + 10
    while not (tmp_path / "job.pid").exists():
        assert time.monotonic() < deadline, "the stand-in never started its job"
        time.sleep(0.02)
    time.sleep(0.1)
    job = int((tmp_path / "job.pid").read_text())
    try:
        assert _alive(job)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_gone(child, 5.0)
        assert _wait_gone(job, 5.0), "a process Terraform started outlived its SIGKILLed deploy"
        with ProjectLock(tmp_path, "second deploy"):
            pass  # and nothing holds the lock
    finally:
        for pid in (child, job):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


FINISHING = """
import sys
from pathlib import Path
from stagegraph import tfwatchdog
from stagegraph.projectlock import hold_for_process
from stagegraph.tfprocess import _untrack, start
root = Path(sys.argv[1])
hold_for_process(root, "deploy")
proc = start(["true"], cwd=root, extra_env={})
proc.wait()
_untrack(proc)  # done with, as `supervise` is
print(tfwatchdog._process.pid, flush=True)
sys.stdin.read()  # until the test closes it
"""


def test_the_watchdog_holds_nothing_and_ends_with_a_normal_run(tmp_path: Path) -> None:
    run = subprocess.Popen(
        [sys.executable, "-c", FINISHING, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert run.stdout is not None and run.stdin is not None
    watchdog = int(run.stdout.readline())
    try:
        # While its interpreter starts it reads its own modules (an fd 3 on a .py file for a
        # moment); none of what it ever holds is in the deployment folder (the lock), and
        # once started it keeps only 0, 1 and 2.
        deadline = time.monotonic() + 5
        while True:
            fds = sorted(os.listdir(f"/proc/{watchdog}/fd"))
            for fd in fds:
                with contextlib.suppress(OSError):
                    assert not os.readlink(f"/proc/{watchdog}/fd/{fd}").startswith(str(tmp_path))
            if fds == ["0", "1", "2"] or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert fds == ["0", "1", "2"]  # no lock
        assert os.readlink(f"/proc/{watchdog}/cwd") == "/"  # no deployment folder pinned
        assert os.getpgid(watchdog) == watchdog  # a Ctrl-C in the terminal is not for it
        run.stdin.close()
        assert run.wait(10) == 0
        assert _wait_gone(watchdog, 3.0), "the watchdog outlived a run that ended normally"
    finally:
        if _alive(watchdog):
            os.kill(watchdog, signal.SIGKILL)


def test_a_run_without_terraform_starts_no_watchdog() -> None:
    code = "import stagegraph.tfprocess, sys; print('stagegraph.tfwatchdog' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"
