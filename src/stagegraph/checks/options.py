"""`doit check`: its command-line options and the one function its action calls.

Kept apart from the checks themselves so the task creator (run for every doit command,
`doit list` included) imports nothing but this list of options.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stagegraph.checks.runner import CheckReport
    from stagegraph.graph import StageGraph
    from stagegraph.project import Project

CHECK_PARAMS: list[dict[str, Any]] = [
    {
        "name": "charts",
        "long": "charts",
        "default": "",
        "type": str,
        "help": "a folder of chart data laid out <chart>/<version>/ (values.yaml, values.schema.json, crds/)",
    },
    {
        "name": "offline",
        "long": "offline",
        "default": False,
        "type": bool,
        "help": "never download chart data; checks without it are named as skipped",
    },
    {
        "name": "only",
        "long": "only",
        "default": [],
        "type": list,
        "help": "run only this check (repeatable)",
    },
]

#: Chart data downloaded by `doit check`, per pinned chart version, under the state folder.
CACHE_SUBDIR = "charts"


def run_check_command(
    project: Project, graph: StageGraph, *, charts: str, offline: bool, only: Sequence[str]
) -> CheckReport:
    """Render in memory, run the checks, and return the report (the action prints it)."""
    from stagegraph.checks.charts import ChartStore, http_fetch
    from stagegraph.checks.runner import render_all, run_checks

    folders = [Path(charts).expanduser()] if charts else []
    cache = project.state_dir / CACHE_SUBDIR
    store = ChartStore(folders=folders, cache_dir=cache, fetcher=None if offline else http_fetch())
    stages = render_all(graph, project.config, project.lock, project.lockfile_name)
    return run_checks(
        stages,
        project.lock,
        project.config.provider,
        store,
        cache_dir=cache,
        only=only,
        config=project.config,
        lockfile_path=project.lockfile_path,
    )
