"""Before a deploy applies anything: every secret the stages to run will read must decrypt.

Without this, a wrong key or a tampered file would surface only when the first stage that
reads it runs, after the stages before it were applied. Run once per deploy (the engine's
`_lock` task is the place); each file is decrypted once and the result stays in the
store, so the stages' own lookups afterwards cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stagegraph.project import Project


def check_stage_secrets(project: Project, stages: Iterable[str] | None = None) -> int:
    """Resolve every sensitive input of `stages` (default: all); raise the first failure.

    Returns how many secrets were resolved. Values are dropped at once (they stay only in
    the per-process store's cache).
    """
    from stagegraph.secretvalues import resolve_secret

    names = list(project.graph.names if stages is None else stages)
    seen: set[str] = set()
    for name in names:
        for item in project.graph[name].sensitive:
            if item.config_path in seen:
                continue
            seen.add(item.config_path)
            resolve_secret(project.config, item.config_path, project.config_name, project.root)
    return len(seen)
