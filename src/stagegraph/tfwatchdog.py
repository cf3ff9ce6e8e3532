"""A watchdog that outlives a killed deploy just long enough to clear what Terraform left.

A deploy killed with SIGKILL runs no handler. Its Terraform children still stop (their
parent-death signal is SIGINT, see `tfprocess`), but a process Terraform started, such as a
provisioner's shell or a job it put in the background, can outlive Terraform, reparented to
init, holding the project lock it inherited. Stopping the whole process group after
Terraform exits (`tfprocess._kill_leftovers`) is the deploy's job, and a dead deploy cannot
do it; this small process does it for it.

One watchdog per deploy process, started with its first Terraform child (a deploy with
nothing to apply never starts one). The deploy writes `+PID START` / `-PID` lines to the
watchdog's stdin as each Terraform starts and is done with (each Terraform leads its own
process group, so its pid is its group's id; START is its start time, see `start_time`). The deploy is the only writer: when that pipe
reaches end-of-file the deploy has exited, however it died. The watchdog then gives each
Terraform still registered `INTERRUPT_GRACE_S` to exit on its own and SIGKILLs each of
their process groups; with nothing registered (a normal exit) it exits at once.

A pid is a number the kernel hands out again once its process is gone and reaped, and
the watchdog is not the parent that reaps: by the time it signals, a Terraform that exited
may have been reaped by init and its pid given to an unrelated process, which may lead a
group of its own. So each pid travels with the start time the kernel recorded for it
(read by the deploy while the child was still its own, unreaped, so surely that
Terraform), and a process found under that pid with another start time is left alone.
(Group members Terraform left behind keep its number reserved as their group id: a pid
with no process under it is still Terraform's group, if anything.)

End-of-file rather than a parent-death signal of its own: the kernel sends that signal when
the *thread* that forked the child exits, and the watchdog may be started from a worker
thread that ends before the deploy does. The watchdog holds no project lock (it is started
outside `projectlock.handing_down`, with no descriptor but its three standard ones), sits in
its own process group (a Ctrl-C in the terminal is for the deploy) and works in `/` (it pins
no deployment folder).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

#: The write end of the running watchdog's stdin, in the deploy; None before the first start.
_pipe: int | None = None
#: Kept, never waited for: it exits once we are gone (init reaps it). Dropping the Popen
#: object would have subprocess warn that it is still running.
_process: object = None
_fork_hook_registered = False


def watch(pid: int, start: int | None) -> None:
    """Have the watchdog clear `pid`'s process group should this process die; starts it.

    `start`: `start_time(pid)`, read while `pid` is this process's unreaped child.
    """
    _send(f"+{pid} {start if start is not None else '-'}\n")


def forget(pid: int) -> None:
    """`pid` is done with: nothing to clear for it any more."""
    if _pipe is not None:
        _send(f"-{pid}\n")


def _send(line: str) -> None:
    # Callers hold tfprocess's lock: one watchdog starts. Lines are shorter than PIPE_BUF,
    # so each write is atomic.
    pipe = _pipe if _pipe is not None else _start()
    if pipe is None:
        return
    # A watchdog that failed to start, or died, costs only its extra guarantee.
    with contextlib.suppress(OSError):
        os.write(pipe, line.encode())


def _start() -> int | None:
    global _pipe, _process, _fork_hook_registered
    import subprocess

    from stagegraph.tfprocess import INTERRUPT_GRACE_S

    read_end, write_end = os.pipe()  # both close-on-exec: no other child inherits them
    try:
        _process = subprocess.Popen(
            [sys.executable, "-c", "from stagegraph.tfwatchdog import main; main()", str(INTERRUPT_GRACE_S)],
            cwd="/",
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            process_group=0,
        )
    except OSError:
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    _pipe = write_end
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=_forget_after_fork)
        _fork_hook_registered = True
    return _pipe


def _forget_after_fork() -> None:
    # A forked copy of the deploy must not hold the pipe open (the watchdog would wait for
    # it too), nor speak for the deploy's children; it starts its own watchdog if it needs one.
    global _pipe
    if _pipe is not None:
        with contextlib.suppress(OSError):
            os.close(_pipe)
    _pipe = None


# --- the watchdog process -------------------------------------------------------------------


def main() -> None:
    """The watchdog: read `+PID`/`-PID` until end-of-file, then clear what is left."""
    grace = float(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # not ours to stop; the pipe says when
    watched: dict[int, int | None] = {}
    for raw in sys.stdin.buffer:
        line = raw.strip()
        with contextlib.suppress(ValueError, IndexError):
            if line.startswith(b"+"):
                pid, start = line[1:].split()
                watched[int(pid)] = None if start == b"-" else int(start)
            elif line.startswith(b"-"):
                watched.pop(int(line[1:]), None)
    clear(watched, grace)


def clear(leaders: dict[int, int | None], grace: float) -> None:
    """Wait up to `grace` seconds for each leader to exit, then SIGKILL each one's group.

    `leaders`: pid -> its start time (None: unknown, the pid is trusted). A pid now held
    by a process that started at another time is not the leader's any more: left alone.
    """
    deadline = time.monotonic() + grace
    while any(_running(pid, start) for pid, start in leaders.items()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, start in leaders.items():
        kill_group_of(pid, start)


def kill_group_of(pid: int, start: int | None) -> None:
    """SIGKILL the process group `pid` led, unless `pid` now names another process."""
    if reused(pid, start):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (/proc/PID/stat, field 22): with the
    pid, one process for the machine's uptime. None where there is no /proc, or no `pid`."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # The command name (field 2) may hold spaces and parentheses: split after its ")".
            return int(f.read().rsplit(b") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def reused(pid: int, start: int | None) -> bool:
    """`pid` now names a process other than the one that started at `start`."""
    if start is None:
        return False
    now = start_time(pid)
    return now is not None and now != start


def _running(pid: int, start: int | None) -> bool:
    """Whether `pid` is alive and still the one watched: not a zombie (init may be slow, or
    never, to reap it), not a new process under a reused pid."""
    if reused(pid, start):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc: trust kill()
