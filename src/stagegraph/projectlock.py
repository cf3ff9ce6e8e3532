"""One deploy, render or destroy of a project at a time.

doit has no lock against two concurrent runs, and two runs applying the same Terraform
stages would race on state and on our records. The lock is `flock(2)` on `<root>/lock`,
held on an open file descriptor for as long as the holder lives: the kernel releases it
when the process exits however it dies (SIGKILL, OOM), so there is never a stale lock to
clean up by hand. Who holds it is written to `<root>/lock.json` for the error message of
whoever comes second; that file is informational only and may outlive a killed holder.

Within one process the lock is re-entrant (counted): several doit tasks of one run each
make sure they hold it. Caveats: flock is per machine (it does not protect a state
directory shared over NFS between hosts). The descriptor is close-on-exec, except that
Terraform children are handed it on purpose (`held_fds`, see `stagegraph.tfprocess`): the
lock is the open file's, so it stays held until the holder *and* every Terraform it started
have exited - a deploy killed with SIGKILL cannot let a second deploy in while its
Terraform is still stopping.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import getpass
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from stagegraph.atomic import remove_if_exists, write_atomic
from stagegraph.errors import LockHeldError, StagegraphError

LOCK_FILE = "lock"
INFO_FILE = "lock.json"

#: How long a refused acquirer waits for holder info that is missing or names a dead
#: process (the new holder has the lock but has not written lock.json yet).
_INFO_GRACE_S = 0.3


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    user: str
    command: str
    since: str  # ISO 8601, UTC, e.g. 2026-11-22T01:02:03Z

    @classmethod
    def current(cls, command: str) -> LockHolder:
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            user=_user(),
            command=command,
            since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    def describe(self) -> str:
        return f"{self.command!r} by {self.user}@{self.host} pid {self.pid} since {self.since}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid())


def read_holder(root: Path) -> LockHolder | None:
    """Who last took the lock of `root`, from lock.json (not proof that it still holds it)."""
    try:
        data = json.loads((root / INFO_FILE).read_text(encoding="utf-8"))
        return LockHolder(
            pid=int(data["pid"]),
            host=str(data["host"]),
            user=str(data["user"]),
            command=str(data["command"]),
            since=str(data["since"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _held_error(root: Path) -> LockHeldError:
    host = socket.gethostname()
    deadline = time.monotonic() + _INFO_GRACE_S
    holder = read_holder(root)
    while holder is None or (holder.host == host and not _pid_alive(holder.pid)):
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
        holder = read_holder(root)
    advice = "wait for it to finish (the lock frees itself if that process dies)"
    if holder is None:
        return LockHeldError(
            f"another stagegraph run holds the lock {root / LOCK_FILE} (it has not recorded "
            f"who it is); {advice}"
        )
    note = ""
    if holder.host == host and not _pid_alive(holder.pid):
        note = " (that process has exited; a process it started may still hold the lock)"
    return LockHeldError(f"another stagegraph run holds the lock: {holder.describe()}{note}; {advice}")


@dataclass
class _Held:
    fd: int
    count: int
    info_path: Path


# Process-wide table of held locks, keyed by the lock file's real path: a second
# flock() on a new descriptor in the same process would conflict with the first.
_registry_lock = threading.Lock()
_held: dict[str, _Held] = {}


#: Threads forking a Terraform child right now (`handing_down`): that child keeps the lock.
_handing_down: set[int] = set()


@contextlib.contextmanager
def handing_down() -> Iterator[tuple[int, ...]]:
    """Around starting a child that must share the lock: yields the fds to pass it.

    Such a child is started with a `preexec_fn` (for its parent-death signal), which makes
    CPython run the at-fork hooks in it; this tells `_forget_after_fork` to leave it the lock.
    """
    ident = threading.get_ident()
    _handing_down.add(ident)
    try:
        yield held_fds()
    finally:
        _handing_down.discard(ident)


def _forget_after_fork() -> None:
    # A forked child inherits the descriptor, and with it a share of the lock. Close it
    # (close, not LOCK_UN: unlocking would free the parent's lock too), so the lock dies
    # with the parent, and start with an empty table and a fresh mutex (another thread may
    # have held the old one at fork time). Not in a Terraform child about to exec: it is
    # meant to hold the lock until it exits (see `handing_down`).
    if threading.get_ident() in _handing_down:
        return
    global _registry_lock, _process_guard
    for held in _held.values():
        with contextlib.suppress(OSError):
            os.close(held.fd)
    _held.clear()
    _registry_lock = threading.Lock()
    _process_locks.clear()
    _process_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _take(root: Path, command: str) -> _Held | None:
    """Lock and write holder info; None when another process holds the lock."""
    path = root / LOCK_FILE
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StagegraphError(f"{path}: cannot open the project lock ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        raise StagegraphError(f"{path}: cannot take the project lock ({exc.strerror or exc})") from None
    info_path = root / INFO_FILE
    try:
        write_atomic(info_path, json.dumps(asdict(LockHolder.current(command)), indent=2) + "\n")
    except OSError as exc:
        os.close(fd)  # closing the only descriptor releases the lock
        raise StagegraphError(f"{info_path}: cannot write lock holder info ({exc.strerror or exc})") from None
    return _Held(fd=fd, count=0, info_path=info_path)


def _drop(held: _Held) -> None:
    # Remove the info before unlocking: once unlocked, lock.json may be the next holder's.
    with contextlib.suppress(OSError):
        remove_if_exists(held.info_path)
    with contextlib.suppress(OSError):
        os.close(held.fd)  # releases the flock


def held_fds() -> tuple[int, ...]:
    """Descriptors of the project locks this process holds, for children to inherit."""
    with _registry_lock:
        return tuple(held.fd for held in _held.values())


def _key(root: Path) -> str:
    return os.path.realpath(root / LOCK_FILE)


class ProjectLock:
    """The project lock of `root`, taken for `command` (shown to whoever comes second).

    `acquire()` fails at once with `LockHeldError` when another process holds it; it never
    waits. Re-entrant within a process; `release()` undoes one `acquire()` of this object.
    """

    def __init__(self, root: Path, command: str) -> None:
        self.root = root
        self.command = command
        self._count = 0

    @property
    def held(self) -> bool:
        return self._count > 0

    def acquire(self) -> ProjectLock:
        key = _key(self.root)
        with _registry_lock:
            held = _held.get(key)
            if held is None:
                held = _take(self.root, self.command)
                if held is not None:
                    _held[key] = held
            if held is not None:
                held.count += 1
                self._count += 1
                return self
        # Outside the registry lock: building the message may wait briefly for lock.json.
        raise _held_error(self.root)

    def release(self) -> None:
        if self._count == 0:
            raise RuntimeError(f"ProjectLock({self.root}) released more often than acquired")
        self._count -= 1
        key = _key(self.root)
        with _registry_lock:
            held = _held.get(key)
            if held is None:  # forked child: the parent's lock was never ours to release
                return
            held.count -= 1
            if held.count == 0:
                del _held[key]
                _drop(held)

    def __enter__(self) -> ProjectLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


_process_guard = threading.Lock()
_process_locks: dict[str, ProjectLock] = {}


def _release_at_exit(lock: ProjectLock) -> None:
    with contextlib.suppress(Exception):
        while lock.held:
            lock.release()


def hold_for_process(root: Path, command: str) -> ProjectLock:
    """Take the lock of `root` once and keep it until this process exits.

    For doit tasks: each task of a run calls this; the first takes the lock (or raises
    `LockHeldError`), the rest find it held. It is released at normal exit (removing
    lock.json) and by the kernel on any other exit.
    """
    key = _key(root)
    with _process_guard:
        lock = _process_locks.get(key)
        if lock is None or not lock.held:
            lock = ProjectLock(root, command).acquire()
            _process_locks[key] = lock
            atexit.register(_release_at_exit, lock)
        return lock
