"""doit's own database: a cache stagegraph can always rebuild, so a broken one is moved aside.

Deploy state lives in stagegraph's records (`stagegraph.records`); doit's database only
remembers which render/preflight tasks were up to date. A truncated or garbled file (a disk
that filled up, a run killed mid-write, a bad merge) made every command, `doit list`
included, fail with doit's traceback. Instead it is renamed to `<name>.corrupt-<time>` (kept
for a post-mortem) and doit starts a fresh one: at worst a few renders are redone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

#: Relative to the deployment folder, as doit's `dep_file` setting.
DOIT_DB = ".stagegraph/doit-db.json"


def _readable(path: Path) -> bool:
    """Whether doit's json backend can use the file: a JSON object of task -> object."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(isinstance(v, dict) for v in data.values())


def recover_doit_db(root: Path) -> str | None:
    """Move a broken doit database aside; the one line to tell the user, or None if fine."""
    path = root / DOIT_DB
    if not path.exists() or _readable(path):
        return None
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        path.replace(aside)
    except OSError as exc:
        return (
            f"{path}: doit's database is unreadable and cannot be moved aside ({exc.strerror}); "
            "delete it (stagegraph's own records keep what is deployed)"
        )
    return (
        f"{path}: doit's database was unreadable; moved it to {aside.name} and started a fresh one "
        "(what is deployed is kept in stagegraph's own records)"
    )
