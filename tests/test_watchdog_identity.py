"""The watchdog signals a Terraform's process group only while its pid still names that Terraform.

Real pid reuse cannot be forced in a test; what it looks like to the watchdog can: a
process under the watched pid whose start time is not the one recorded at spawn. The
watchdog runs as it does for a deploy (its own process, lines on stdin, end-of-file).
`test_children` shows the recorded start time is the right one: there the watchdog still
clears what a SIGKILLed deploy's Terraform left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from stagegraph.tfwatchdog import reused, start_time

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")


def _innocent() -> subprocess.Popen[bytes]:
    """A process leading its own group, as one under a reused pid might."""
    return subprocess.Popen(["sleep", "60"], process_group=0)


def _watchdog(lines: str) -> None:
    dog = subprocess.Popen(
        [sys.executable, "-c", "from stagegraph.tfwatchdog import main; main()", "0.2"],
        stdin=subprocess.PIPE,
        cwd="/",
    )
    dog.communicate(lines.encode(), timeout=60)  # end-of-file: "the deploy is gone"
    assert dog.returncode == 0


def test_start_time_tells_processes_apart() -> None:
    a, b = _innocent(), _innocent()
    try:
        sa, sb = start_time(a.pid), start_time(b.pid)
        assert isinstance(sa, int) and isinstance(sb, int) and sa <= sb
        assert start_time(a.pid) == sa  # stable for the process's life
        assert not reused(a.pid, sa) and reused(a.pid, sa - 1) and not reused(a.pid, None)
    finally:
        for p in (a, b):
            p.kill()
            p.wait()


@pytest.mark.parametrize("same", [True, False], ids=["its-terraform", "pid-reused"])
def test_the_watchdog_kills_the_group_only_when_the_pid_is_still_the_one_watched(same: bool) -> None:
    proc = _innocent()
    try:
        start = start_time(proc.pid)
        assert start is not None
        _watchdog(f"+{proc.pid} {start if same else start - 1}\n")
        deadline = time.monotonic() + 5
        while proc.poll() is None and same and time.monotonic() < deadline:
            time.sleep(0.05)
        if same:
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.poll() is None, "the watchdog killed a process that merely has the watched pid"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_without_a_start_time_the_pid_is_trusted_as_before() -> None:
    proc = _innocent()
    try:
        _watchdog(f"+{proc.pid} -\n")
        proc.wait(timeout=5)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
