"""Shared setup of the render-check tests: the pinned charts' data, renders, and edits of them.

The chart data is other projects' material and stays outside the repository: it is read
from `../shared/charts` (CI lays it next to the clone). Tests that need it skip, saying so,
when it is absent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stagegraph.checks import StageRender
from stagegraph.checks.charts import ChartStore
from stagegraph.checks.runner import CheckReport, render_all, run_checks
from stagegraph.configfile import load_config, parse_config
from stagegraph.graph import build_graph
from stagegraph.lockfile import load_lockfile
from stagegraph.stages.builtin import BUILTIN_STAGES

ROOT = Path(__file__).resolve().parents[1]
SHARED_CHARTS = ROOT.parent / "shared" / "charts"
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")


def shared_charts() -> ChartStore:
    if not SHARED_CHARTS.is_dir():
        pytest.skip(
            f"{SHARED_CHARTS} is absent: the chart checks read the pinned charts' data from "
            "../shared/charts next to the repository (CI has it)"
        )
    return ChartStore(folders=[SHARED_CHARTS])


def render_file(path: Path) -> list[StageRender]:
    return render_all(build_graph(BUILTIN_STAGES), load_config(path), LOCK, "lockfiles/versions.yaml")


def render_text(text: str) -> list[StageRender]:
    config = parse_config(text, "nebari-config.yaml")
    return render_all(build_graph(BUILTIN_STAGES), config, LOCK, "lockfiles/versions.yaml")


def check(
    stages: Sequence[StageRender], only: Sequence[str] = (), store: ChartStore | None = None
) -> CheckReport:
    provider = "sandbox"
    return run_checks(stages, LOCK, provider, store or shared_charts(), only=only)


def doc(stages: Sequence[StageRender], stage: str, file: str = "main.tf.json") -> dict[str, Any]:
    found = next(s for s in stages if s.name == stage)
    data: dict[str, Any] = json.loads(found.files[file])
    return data


def edited(
    stages: Sequence[StageRender],
    stage: str,
    edit: Callable[[dict[str, Any]], None],
    file: str = "main.tf.json",
) -> list[StageRender]:
    """The render with one Terraform file of one stage changed by `edit` (in place)."""
    out = []
    for s in stages:
        if s.name == stage:
            data = json.loads(s.files[file])
            edit(data)
            s = replace(s, files={**s.files, file: json.dumps(data).encode()})
        out.append(s)
    return out


def problem_lines(report: CheckReport) -> list[str]:
    return [f.line() for f in report.problems]
