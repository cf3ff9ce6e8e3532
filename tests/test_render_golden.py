"""Golden Terraform JSON per stage for real configs (update with --update-golden).

A reviewer reads a golden diff the way a user reads `git diff` of a render: every config or
lockfile change that reaches Terraform shows up here as changed lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from goldenfiles import read_golden, write_golden

from stagegraph.configfile import load_config
from stagegraph.graph import build_graph
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.stages.builtin import BUILTIN_STAGES

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")

CONFIGS = {
    "sandbox-default": ROOT / "nebari-config.yaml",
    "nebari-init-local": ROOT / "tests" / "fixtures" / "configs" / "shared-local.happy.yaml",
    "nebari-init-existing": ROOT / "tests" / "fixtures" / "configs" / "nebari-existing.happy.yaml",
    "explicit-local": ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml",
    "aws-typical": ROOT / "tests" / "fixtures" / "configs" / "aws-typical.happy.yaml",
    "aws-existing-network-gpu": ROOT
    / "tests"
    / "fixtures"
    / "configs"
    / "aws-existing-network-gpu.happy.yaml",
    "gcp-typical": ROOT / "tests" / "fixtures" / "configs" / "gcp.happy.yaml",
    "azure-typical": ROOT / "tests" / "fixtures" / "configs" / "azure.happy.yaml",
}


def _render_all(config_path: Path) -> dict[str, bytes]:
    config = load_config(config_path)
    out: dict[str, bytes] = {}
    for stage in build_graph(BUILTIN_STAGES).stages:
        rendered = render_stage(stage, config, LOCK, "lockfiles/versions.yaml")
        for name, data in rendered.files.items():
            out[f"{rendered.directory}/{name}"] = data
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_golden_render(name: str, update_golden: bool) -> None:
    path = CONFIGS[name]
    files = _render_all(path)
    target = GOLDEN / name
    if update_golden:
        write_golden(target, files)
    on_disk = read_golden(target)
    assert sorted(on_disk) == sorted(files), "stage files differ; rerun with --update-golden and review"
    for rel, data in files.items():
        assert on_disk[rel] == data, (
            f"{rel} differs from tests/golden/{name}; rerun with --update-golden and review"
        )
