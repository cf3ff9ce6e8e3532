"""Keep every write and delete inside the folder it belongs to.

Files in a deployment folder are input like any other: a render manifest, a deploy record
or an inventory is committed or copied along with the config, so a name read from one can
be anything a hostile commit puts there (`../../../home/me/.bashrc`, `/etc/passwd`, or a
stage folder made a symlink to somewhere else). Every path the tool derives from such a
file goes through `inside()` before anything is written or deleted at it.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from stagegraph.errors import StagegraphError


class OutsideError(StagegraphError):
    """A name read from a file would make the tool touch something outside its folder."""


def relative_name_problem(name: str) -> str | None:
    """Why `name` is not a plain relative path of one or more components, or None."""
    if not name or "\x00" in name:
        return "empty or NUL in the name"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or name.startswith("\\"):
        return "absolute path"
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if any(part in ("..", ".") for part in parts) or not parts:
        return "'..' or '.' in the path"
    return None


def is_within(path: Path, base: Path) -> bool:
    """Whether `path`, with every symlink resolved, is `base` or below it (resolved too)."""
    real_base = Path(os.path.realpath(base))
    real = Path(os.path.realpath(path))
    return real == real_base or real_base in real.parents


def inside(base: Path, name: str, source: str) -> Path:
    """`base / name`, or `OutsideError` naming `source` when that would leave `base`.

    Checks the name itself (no absolute path, no `..`) and then the real location of its
    parent folder, so a symlinked folder inside `base` cannot lead out of it either. The
    last component itself may be a symlink: replacing or unlinking it touches only the
    link, which lies inside `base`.
    """
    problem = relative_name_problem(name)
    target = base / name
    if problem is None and not is_within(target.parent, base):
        problem = "it leads out through a symlink"
    if problem is not None:
        raise OutsideError(
            f"{source}: {name!r} is outside {base} ({problem}); stagegraph never writes or deletes "
            "outside its folders: remove that entry (or the file naming it) and run again"
        )
    return target
