"""Terraform as a child process: started, its output pumped, stopped gracefully, never orphaned.

`start` runs a command in its own process group, with an owner-only umask and Terraform's
non-interactive environment (`read_version` runs `version -json` the same way). `supervise`
pumps its stdout and stderr line by line (one reader thread per pipe) through an
`OutputReader` to the stage's `Log` and the `on_line` callback, and when anything goes wrong
on our side (Ctrl-C, `on_line` raising) asks Terraform to stop with one SIGINT, keeps logging
while it does, and kills the whole process group after the grace period. Children still
running when the interpreter exits get the same treatment (see `_track`).

Never orphaned, however we stop:
- SIGTERM/SIGINT: `begin_shutdown` (called by the doit layer's signal handler) sends every
  running Terraform one SIGINT and refuses to start any new one from then on, so a worker
  thread cannot start the next stage's Terraform after the running ones were collected.
- SIGKILL (or any death we cannot handle): on Linux every child is started with a
  parent-death signal (prctl PR_SET_PDEATHSIG = SIGINT), so Terraform stops gracefully on
  its own; and each child inherits the project lock's descriptor, so the lock stays held
  until the last of them has exited (`stagegraph.projectlock.handing_down`). What Terraform
  started and left behind (a provisioner's process) is killed with its process group by a
  watchdog process once Terraform exits (`stagegraph.tfwatchdog`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from stagegraph.errors import TerraformError
from stagegraph.tfevents import Outcome, OutputReader

OnLine = Callable[[str], None]

# How long Terraform gets to stop after SIGINT (finish the resource in flight, write state,
# release the lock) before the whole process group is killed.
INTERRUPT_GRACE_S = 30.0
# No update checks, no prompts, output worded for automation.
_BASE_ENV = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}

_Lines = queue.Queue[tuple[str, bytes | None]]
_live: set[subprocess.Popen[bytes]] = set()
# Re-entrant: the signal handler (main thread) may interrupt the main thread inside `start`.
_live_lock = threading.RLock()
_atexit_registered = False
#: Set once shutdown began: no Terraform starts after it.
_stopping = threading.Event()
#: Pids already sent their one SIGINT (a second one makes Terraform exit at once).
_interrupted: set[int] = set()
#: Pid -> start time of each running Terraform (`tfwatchdog.start_time`): who its pid names.
_start_times: dict[int, int | None] = {}


class ShuttingDownError(TerraformError):
    """A Terraform command was not started because the run is stopping."""


def stopping() -> bool:
    """Whether this process is shutting down (a signal arrived or it is exiting)."""
    return _stopping.is_set()


def begin_shutdown() -> int:
    """Refuse new Terraform runs and ask each running one to stop; how many were running."""
    with _live_lock:
        _stopping.set()
        procs = list(_live)
    # Counted before the SIGINT: a child may be gone by the time we could look again.
    running = [proc for proc in procs if proc.poll() is None]
    for proc in running:
        _interrupt(proc)
    return len(running)


def kill_all() -> None:
    """No more grace (a second signal): kill every running Terraform's process group."""
    with _live_lock:
        _stopping.set()
        procs = list(_live)
    for proc in procs:
        _kill_group(proc)


def start(argv: Sequence[str], cwd: Path, extra_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start one Terraform command, both pipes open, tracked until `supervise` is done with it.

    Raises `ShuttingDownError` once shutdown began, OSError when it cannot start.
    """
    from stagegraph.projectlock import handing_down

    with _live_lock:
        if _stopping.is_set():
            raise ShuttingDownError(f"not starting {Path(argv[0]).name}: this run is stopping")
        with handing_down() as lock_fds:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=_child_env(extra_env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=lock_fds,
                **_popen_extras(),
            )
        _track(proc)
        if os.name == "posix":
            # Outside `handing_down`: the watchdog it may start must not hold the lock.
            from stagegraph import tfwatchdog

            # Now, while it is our unreaped child: the start time is surely this Terraform's.
            start = _start_times[proc.pid] = tfwatchdog.start_time(proc.pid)
            tfwatchdog.watch(proc.pid, start)
    return proc


def _child_env(extra_env: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(_BASE_ENV)
    env.update(extra_env)
    return env


def read_version(argv: Sequence[str], cwd: Path | None) -> str:
    """Terraform's version from `version -json`, run to completion."""
    try:
        done = subprocess.run(
            [*argv, "version", "-json"],
            cwd=cwd,
            env=_child_env({}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TerraformError(f"cannot read the version of {argv[0]}: {exc}") from None
    try:
        version = json.loads(done.stdout)["terraform_version"]
    except (ValueError, KeyError, TypeError):
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        last = lines[-1].strip() if lines else "no output"
        raise TerraformError(
            f"cannot read the version of {argv[0]} (`version -json` exit {done.returncode}): "
            f"{last}; is it terraform or tofu?"
        ) from None
    return str(version)


def supervise(
    proc: subprocess.Popen[bytes],
    log: Log,
    reader: OutputReader,
    on_line: OnLine | None,
    *,
    events: bool,
    capture: bool,
    grace: float,
    tool: str,
) -> Outcome:
    """Pump `proc`'s output until it exits, and return what it did.

    `events`: stdout is `-json` events. With `capture`, stdout is kept whole in the outcome
    and neither logged nor passed to `on_line`. On any exception, including
    KeyboardInterrupt, Terraform is stopped (`grace` seconds after a SIGINT, then killed)
    before the exception goes on.
    """
    _track(proc)
    child = _Child(proc, queue.Queue(), log, reader, events=events, capture=capture)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            threading.Thread(target=_read_lines, args=(stream, name, child.lines), daemon=True).start()
        return child.pump(on_line)
    except BaseException:
        # KeyboardInterrupt, or on_line raised: Terraform must not run on unattended.
        child.stop(grace, tool)
        raise
    finally:
        _untrack(proc)


class Log:
    """The stage's log file: appended to, owner-only, flushed every line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._f = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, line: str) -> None:
        self._f.write(line + "\n")
        self._f.flush()

    def note(self, line: str) -> None:
        """`write` for the stopping path, where a full disk must not stop us killing Terraform."""
        with contextlib.suppress(OSError, ValueError):
            self.write(line)

    def close(self) -> None:
        self._f.close()


@dataclass
class _Child:
    """One running command and the queue its reader threads fill."""

    proc: subprocess.Popen[bytes]
    lines: _Lines
    log: Log
    reader: OutputReader
    events: bool
    capture: bool

    def pump(self, on_line: OnLine | None) -> Outcome:
        proc = self.proc
        outcome = Outcome(exit_code=-1, stdout="", error_line=None)
        captured: list[bytes] = []
        open_streams = 2
        exited_at: float | None = None
        while open_streams:
            try:
                name, raw = self.lines.get(timeout=0.2)
            except queue.Empty:
                # A grandchild that inherited a pipe could keep it open after Terraform exits.
                if proc.poll() is not None:
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 2.0:
                        break
                continue
            if raw is None:
                open_streams -= 1
                continue
            if self.capture and name == "stdout":
                captured.append(raw)
                continue
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            for shown in self.reader.lines(text, self.events and name == "stdout", outcome):
                self.log.write(shown)
                outcome.tail.append(shown)
                if on_line is not None:
                    on_line(shown)
            if outcome.snapshot_due:
                outcome.error_tail, outcome.snapshot_due = list(outcome.tail), False
        if captured:
            self.log.write(f"({sum(len(b) for b in captured)} bytes of JSON on stdout, not logged)")
        outcome.stdout = b"".join(captured).decode("utf-8", "replace")
        outcome.exit_code = proc.wait()
        return outcome

    def stop(self, grace: float, tool: str) -> None:
        """SIGINT, keep logging what Terraform says while it stops, kill after the grace."""
        proc, log = self.proc, self.log
        if proc.poll() is None:
            log.note(f"=== interrupted: asking {tool} to stop (SIGINT), killing it after {grace:.0f}s")
            _interrupt(proc)
            deadline = time.monotonic() + grace
            try:
                while proc.poll() is None and time.monotonic() < deadline:
                    self._drain(0.1)
            except KeyboardInterrupt:
                log.note("=== interrupted again: killing it now")
            if proc.poll() is None:
                _kill_group(proc)
            proc.wait()
            _kill_leftovers(proc)
            log.note(f"=== stopped (exit {proc.returncode})")
        self._drain(0.1)

    def _drain(self, timeout: float) -> None:
        # To the log only (on_line may be what raised); keeps the pipes from filling up.
        end = time.monotonic() + timeout
        while True:
            try:
                name, raw = self.lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                return
            if raw is None or (self.capture and name == "stdout"):
                continue
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            scratch = Outcome(exit_code=-1, stdout="", error_line=None)
            for line in self.reader.lines(text, self.events and name == "stdout", scratch):
                self.log.note(line)


def _read_lines(stream: IO[bytes], name: str, out: _Lines) -> None:
    try:
        for raw in stream:
            out.put((name, raw))
    except (OSError, ValueError):
        pass  # pipe closed under us while stopping
    finally:
        out.put((name, None))
        with contextlib.suppress(OSError):
            stream.close()


def _popen_extras() -> dict[str, Any]:
    if os.name != "posix":
        return {}
    # umask: state, backups and plan files hold secrets; they are created owner-only.
    # process_group: a Ctrl-C in the terminal reaches only us, and we forward exactly one
    # SIGINT; were Terraform in our group it would get two (the terminal's and ours).
    extras: dict[str, Any] = {"umask": 0o077, "process_group": 0}
    prctl = _prctl()
    if prctl is not None:
        extras["preexec_fn"] = _die_with(os.getpid(), prctl)
    return extras


_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved in the parent (the child only calls it); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return cast("Callable[..., int]", fn)


def _die_with(parent: int, prctl: Callable[..., int]) -> Callable[[], None]:
    def in_child() -> None:
        # Runs between fork and exec. SIGINT is Terraform's "stop gracefully" (and the
        # embedded one's, see tfembed). If we died before this line the signal will never
        # come: stop now instead of running unattended.
        prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(125)

    return in_child


# --- children still running at exit ---------------------------------------------------------


def _track(proc: subprocess.Popen[bytes]) -> None:
    global _atexit_registered
    with _live_lock:
        _live.add(proc)
        if not _atexit_registered:
            # Runs started from worker threads (doit -P thread) never see the KeyboardInterrupt
            # of the main thread; this stops their Terraform when the interpreter exits.
            atexit.register(_stop_all)
            _atexit_registered = True


def _untrack(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.discard(proc)
        _start_times.pop(proc.pid, None)
        if "stagegraph.tfwatchdog" in sys.modules:
            sys.modules["stagegraph.tfwatchdog"].forget(proc.pid)


def _stop_all() -> None:
    with _live_lock:
        _stopping.set()
        procs = list(_live)
    for proc in procs:
        _interrupt(proc)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
        _kill_leftovers(proc)


def _interrupt(proc: subprocess.Popen[bytes]) -> None:
    # SIGINT to Terraform alone, once: a second one makes it exit at once, state lock held.
    with _live_lock:
        if proc.pid in _interrupted or proc.poll() is not None:
            return
        _interrupted.add(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)


def _kill_leftovers(proc: subprocess.Popen[bytes]) -> None:
    """After a stopped Terraform exited: what it started and left in its group (a
    provisioner's `sleep`, whose shell Terraform killed) goes too; it would hold the lock."""
    if os.name == "posix" and proc.returncode is not None:
        from stagegraph.tfwatchdog import kill_group_of

        # Reaped already: its pid may name another process by now (see tfwatchdog).
        kill_group_of(proc.pid, _start_times.get(proc.pid))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The group: Terraform's provider plugins and provisioner commands go too.
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
