"""One deploy at a time across machines: a leased lock held in the shared store.

The algorithm, the same for every store (`sharedstate.store`):

- take: create `lock.json` only if absent (exactly one creator wins); it names the holder
  (pid, user, host, command, since) and when its lease expires;
- a live holder renews the lease every third of it, by replacing the object at the version
  it last wrote, so a holder whose lock was taken over notices at its next renewal;
- a holder that dies stops renewing; once its lease has expired, the next run takes the
  lock over, again by replacing at the version it read, so two runs cannot both take over
  the same stale lock;
- a run that finds a live holder waits up to `lock_wait_s`, then fails with one line
  naming the holder; release deletes the object at the version last written.

Losing the lock (taken over, or not renewed before the lease ran out, e.g. the store was
unreachable that long) is recorded in `lost`; the deploy reads it before each stage
(`lost_lock`) and starts none once it is set.

Expiry compares the holder's clock with the taker's: clocks must agree to well within the
lease (NTP does that).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stagegraph.errors import DeployError, LockHeldError, StagegraphError
from stagegraph.sharedstate.store import LOCK_OBJECT, ConditionalStore, Versioned

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class LockLostError(DeployError):
    """This run's shared lock was taken over, or could not be renewed in time."""


@dataclass(frozen=True)
class Lease:
    lease_s: float
    wait_s: float


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime(TIME_FORMAT)


@dataclass
class SharedLock:
    """The deployment's lock: held by one process on any machine, renewed while it lives."""

    store: ConditionalStore
    command: str
    lease: Lease
    lost: str | None = None
    _version: str | None = None
    _renewed: float = 0.0  # monotonic time of the last write that went through
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _holder: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from stagegraph.projectlock import LockHolder

        holder = LockHolder.current(self.command)
        self._holder = {
            "pid": holder.pid,
            "host": holder.host,
            "user": holder.user,
            "command": holder.command,
            "since": holder.since,
        }

    def _body(self) -> bytes:
        now = time.time()
        body = {
            **self._holder,
            "lease_s": self.lease.lease_s,
            "renewed": _stamp(now),
            "expires": _stamp(now + self.lease.lease_s),
        }
        return json.dumps(body, indent=2).encode() + b"\n"

    def acquire(self) -> None:
        """Take the lock, waiting up to the lease's wait for a holder to finish or expire."""
        deadline = time.monotonic() + self.lease.wait_s
        current: Versioned | None = None
        while True:
            written = time.monotonic()
            version = self.store.create(LOCK_OBJECT, self._body())
            if version is not None:
                break
            current = self.store.get(LOCK_OBJECT)
            if current is not None and expired(current.data):
                # Take over a dead holder's lock, only if nobody did in the meantime.
                version = self.store.replace(LOCK_OBJECT, self._body(), current.version)
                if version is not None:
                    break
            if time.monotonic() >= deadline:
                raise LockHeldError(held_message(self.store, current, self.lease.wait_s))
            time.sleep(min(1.0, max(0.05, self.lease.wait_s / 20)))
        self._version, self._renewed = version, written
        self._thread = threading.Thread(target=self._renew, name="stagegraph-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        every = self.lease.lease_s / 3
        while not self._stop.wait(every):
            assert self._version is not None
            attempt = time.monotonic()
            try:
                version = self.store.replace(LOCK_OBJECT, self._body(), self._version)
            except StagegraphError as exc:  # the next renewal may get through, if in time
                if time.monotonic() >= self._renewed + self.lease.lease_s:
                    self.lost = (
                        f"{self.store.describe(LOCK_OBJECT)}: the shared lock could not be renewed "
                        f"before its lease ran out ({str(exc).splitlines()[0]})"
                    )
                    return
                continue
            if version is None:
                current = self.store.get(LOCK_OBJECT)
                self.lost = (
                    f"{self.store.describe(LOCK_OBJECT)}: the shared lock was taken over by {_who(current)}"
                )
                return
            self._version, self._renewed = version, attempt

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._version is not None and self.lost is None:
            # At exit there is nobody to report to: a lock left behind expires with its lease.
            with contextlib.suppress(StagegraphError):
                self.store.delete(LOCK_OBJECT, self._version)
        self._version = None


def expired(body: bytes) -> bool:
    try:
        expires = datetime.strptime(json.loads(body)["expires"], TIME_FORMAT).replace(tzinfo=UTC)
    except (ValueError, KeyError, TypeError):
        return True  # unreadable: a torn or foreign object, not a live holder's
    return datetime.now(UTC) >= expires


def _who(current: Versioned | None) -> str:
    try:
        data = json.loads(current.data) if current else {}
        return (
            f"{data['command']!r} by {data['user']}@{data['host']} pid {data['pid']} since "
            f"{data['since']} (lease until {data['expires']})"
        )
    except (ValueError, KeyError, TypeError):
        return "a run that did not say who it is"


def held_message(store: ConditionalStore, current: Versioned | None, waited: float) -> str:
    return (
        f"another stagegraph run holds the shared lock {store.describe(LOCK_OBJECT)}: {_who(current)}; "
        f"waited {waited:g}s; run again when it has finished (a dead holder's lock expires with its lease)"
    )


_held_locks: dict[str, SharedLock] = {}
_guard = threading.Lock()


def hold_shared_lock(store: ConditionalStore, command: str, lease: Lease) -> SharedLock:
    """Take the shared lock once per process and keep it until the process exits."""
    import atexit

    key = store.describe(LOCK_OBJECT)
    with _guard:
        lock = _held_locks.get(key)
        if lock is None:
            lock = SharedLock(store, command, lease)
            lock.acquire()
            _held_locks[key] = lock
            atexit.register(lock.release)
        return lock


def forget_shared_lock(store: ConditionalStore) -> None:
    """Stop holding the lock in `store` without deleting it: the store itself is gone
    (stage 01 destroyed the bucket it was in), and with it the lock."""
    with _guard:
        lock = _held_locks.pop(store.describe(LOCK_OBJECT), None)
    if lock is not None:
        lock._stop.set()
        if lock._thread is not None:
            lock._thread.join(timeout=5)
        lock._version = None  # its atexit release then has nothing to delete


def lost_lock() -> str | None:
    """Why this process no longer holds a shared lock it took, or None while it does."""
    with _guard:
        return next((lock.lost for lock in _held_locks.values() if lock.lost), None)


def refuse_if_lost() -> None:
    """Start no new stage once the shared lock is lost: another run may be deploying now."""
    lost = lost_lock()
    if lost is not None:
        raise LockLostError(f"{lost}; this run started no stage after that and stops here")
