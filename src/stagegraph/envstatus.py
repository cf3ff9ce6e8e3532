"""`doit status --all`: every environment of a deployment folder side by side.

One row per stage (in the runtime order of the first environment that has it), one column
per environment (`default` for nebari-config.yaml, then `nebari-config.<env>.yaml` by
name). Each environment is read as its own project, with its own records and renders;
nothing is written. A broken environment shows `error` in its column and its one-line
error below the table, so the other environments stay visible.
"""

from __future__ import annotations

import os
from pathlib import Path

from stagegraph.deployment import environments, label
from stagegraph.errors import StagegraphError
from stagegraph.lockoverride import base_lockfile


def folder_status(folder: Path, invoked_from: Path) -> str:
    from stagegraph.project import LOCKFILE_ENV, Project
    from stagegraph.status import stage_state

    found = environments(folder)
    if not found:
        raise StagegraphError(f"{folder}: no nebari-config.yaml or nebari-config.<env>.yaml here")
    columns: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    order: list[str] = []
    problems: list[str] = []
    broken: set[str] = set()
    for environment, config in found:
        name = label(environment)
        columns.append(name)
        project = Project(
            root=folder,
            config_path=config,
            lockfile_path=base_lockfile(folder, os.environ, LOCKFILE_ENV),
            invoked_from=invoked_from,
        )
        try:
            project.check_identity(record=False)
            stages = project.graph.names
            for stage in stages:
                if stage not in order:
                    order.append(stage)
                cells[(stage, name)] = stage_state(project, stage, fresh=True).state
        except StagegraphError as exc:
            problems.append(f"{name}: {str(exc).splitlines()[0]}")
            broken.add(name)
    width = max([len("stage"), *(len(s) for s in order)])
    widths = [max(len(c), 13) for c in columns]
    lines = ["  ".join([f"{'stage':<{width}}", *(f"{c:<{w}}" for c, w in zip(columns, widths, strict=True))])]
    for stage in order:
        row = [f"{stage:<{width}}"]
        row += [
            f"{cells.get((stage, c), 'error' if c in broken else '-'):<{w}}"
            for c, w in zip(columns, widths, strict=True)
        ]
        lines.append("  ".join(row).rstrip())
    lines += [f"error: {p}" for p in problems]
    return "\n".join(lines)
