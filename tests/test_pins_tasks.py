"""The doit side of `bump` and `verify_pins`: parameters parse, imports stay light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from doit.cmd_base import ModuleTaskLoader
from doit.doit_cmd import DoitMain

from stagegraph.pins.tasks import BUMP_PARAMS, VERIFY_PARAMS


def run_doit(argv: list[str], tmp: Path) -> dict[str, Any]:
    """Run a task wired like the lead's `bump`/`verify_pins`, recording what the action got."""
    got: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:
        got.update(kwargs)

    def task_bump() -> dict[str, Any]:
        return {
            "actions": [
                (
                    lambda group, apply, date, report: record(
                        group=group, apply=apply, date=date, report=report
                    )
                )
            ],
            "params": BUMP_PARAMS,
            "verbosity": 2,
        }

    def task_verify_pins() -> dict[str, Any]:
        return {"actions": [(lambda group: record(group=group))], "params": VERIFY_PARAMS, "verbosity": 2}

    loader = ModuleTaskLoader(
        {
            "task_bump": task_bump,
            "task_verify_pins": task_verify_pins,
            "DOIT_CONFIG": {"dep_file": str(tmp / "doit.json"), "backend": "json"},
        }
    )
    assert DoitMain(loader).run(argv) == 0
    return got


def test_bump_defaults_to_a_dry_run_of_the_quarters_group(tmp_path: Path) -> None:
    assert run_doit(["bump"], tmp_path) == {"group": "", "apply": False, "date": "", "report": ""}


def test_bump_flags(tmp_path: Path) -> None:
    got = run_doit(
        ["bump", "--apply", "--group", "providers", "--date", "2025-07-01", "--report", "r.md"], tmp_path
    )
    assert got == {"group": "providers", "apply": True, "date": "2025-07-01", "report": "r.md"}


def test_verify_pins_group(tmp_path: Path) -> None:
    assert run_doit(["verify_pins", "--group", "helm_charts"], tmp_path) == {"group": "helm_charts"}


def test_importing_the_task_module_loads_no_http_or_yaml_rewriter() -> None:
    code = (
        "import sys, json, stagegraph.pins.tasks; "
        "print(json.dumps(sorted(m for m in ('urllib.request', 'http.client', 'ssl', 'ruamel.yaml', "
        "'concurrent.futures', 'stagegraph.pins.httpclient') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []
