"""Crash-safe file writes: a reader sees the old file or the new one, never a mix.

Deploy records are the source of truth of what is deployed (doit's own database loses a
run killed by SIGTERM/SIGKILL), so every write of state goes through here: write a temp
file next to the target, fsync it, rename it over the target, fsync the directory. A
process killed at any instant leaves the target intact; at worst a hidden `*.tmp` file
remains next to it, which no reader looks at.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _same_content(path: Path, data: bytes) -> bool:
    try:
        # Compare sizes first so a large unchanged-length check is the only full read.
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


def _fix_mode(path: Path, mode: int) -> None:
    # Unchanged content but wrong permissions (say a record left 0644 by an older
    # version): tighten them, since "skip" must not keep a file more readable than asked.
    with contextlib.suppress(OSError):
        if (path.stat().st_mode & 0o7777) != mode:
            path.chmod(mode)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable. Some filesystems refuse fsync on a directory
    # (EINVAL) or opening one (Windows); the rename is still atomic there.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> bool:
    """Replace `path` with `data` atomically; return False when it already held exactly that.

    The temp file is created owner-only and switched to `mode` before any byte is written,
    so content meant to be private (mode 0600) is never readable by others, not even
    briefly. `str` data is written as UTF-8. Parent directories are created. Raises
    `OSError` on failure, after removing the temp file; the old file is then untouched.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if _same_content(path, raw):
        _fix_mode(path, mode)
        return False
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    # Hidden name and a `.tmp` suffix: globbing readers (`records/*.json`) never see it.
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        # fchmod ignores the umask: the final mode is exactly what the caller asked for.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            fd = -1  # the file object owns (and closes) it now
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        # BaseException too: a Ctrl-C in the middle must not leave the temp file behind.
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(directory)
    return True


def remove_if_exists(path: Path) -> bool:
    """Delete `path`; return whether there was a file to delete."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    _fsync_dir(path.parent)
    return True
