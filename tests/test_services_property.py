"""Property: one value changed in a service section re-renders stage 07 and no stage that
does not read it.

A user who edits one value under profiles, environments, theme, jupyterlab, conda_store,
argo_workflows, monitoring, ... must see that value change in 07's rendered files (so `git
diff` shows it and the deploy re-applies 07) and in no other stage's files (so nothing
else is re-applied). Values and mapping keys are both mutated; mutations that make the
config invalid are skipped. monitoring.healthchecks belongs to stages 10 and 11.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from confmutate import SERVICE_SECTIONS, declares, is_secret_ref, mutate, parent_of, valid_or_skip
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegraph.graph import build_graph
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stages.builtin import BUILTIN_STAGES
from stagegraph.stages.services import NAME

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "configs"
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
GRAPH = build_graph(BUILTIN_STAGES)
BASES = {
    "explicit": yaml.safe_load((FIXTURES / "explicit-local.happy.yaml").read_text()),
    "toggles": yaml.safe_load((FIXTURES / "services-toggles.happy.yaml").read_text()),
    "sandbox": yaml.safe_load((ROOT / "nebari-config.yaml").read_text()),
}
Path_ = tuple[str | int, ...]


def _targets(data: Any, path: Path_ = ()) -> list[tuple[str, Path_]]:
    """("value", path) for every scalar and ("key", path) for every mapping key."""
    out: list[tuple[str, Path_]] = []
    if is_secret_ref(data):
        # A reference to an encrypted secret is never rendered: its change reaches the
        # deploy through the sensitive variable's digest, not through the files.
        return out
    if isinstance(data, dict):
        for key, value in data.items():
            out.append(("key", (*path, key)))
            out += _targets(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _targets(value, (*path, i))
    elif isinstance(data, (str, bool, int, float)):
        out.append(("value", path))
    return out


def _service_targets(base: str) -> list[tuple[str, str, Path_]]:
    data = BASES[base]
    found = []
    for section in SERVICE_SECTIONS:
        if section not in data:
            continue
        for kind, path in _targets(data[section], (section,)):
            if path[:2] == ("monitoring", "healthchecks"):
                continue
            if path[0] == "secrets" and path[-1] in ("sops", "key"):
                continue  # where a user secret's value is: reaches 07 as a sensitive variable
            found.append((base, kind, path))
    return found


TARGETS = [t for base in sorted(BASES) for t in _service_targets(base)]


def _apply(data: Any, kind: str, path: Path_) -> None:
    node = parent_of(data, path)
    last = path[-1]
    if kind == "value":
        node[last] = mutate(node[last])
    else:
        # Rename the key in place, keeping the mapping's order.
        items = list(node.items())
        node.clear()
        node.update({(f"{k}x" if k == last else k): v for k, v in items})


def _render_all(config: NebariConfig) -> dict[str, dict[str, bytes]]:
    return {
        stage.name: dict(render_stage(stage, config, LOCK, "lockfiles/versions.yaml").files)
        for stage in GRAPH.stages
    }


BEFORE = {name: _render_all(NebariConfig.model_validate(data)) for name, data in BASES.items()}


@given(st.sampled_from(TARGETS))
@settings(max_examples=150, deadline=None)
def test_one_service_value_changes_only_stage_07(target: tuple[str, str, Path_]) -> None:
    base, kind, path = target
    data = copy.deepcopy(BASES[base])
    _apply(data, kind, path)
    config = valid_or_skip(data)
    after = _render_all(config)
    where = f"{kind} {'.'.join(map(str, path))} in {base}"
    changed = {name for name in after if after[name] != BEFORE[base][name]}
    assert NAME in changed, f"{where}: 07's rendered files did not change"
    # Any other stage that changed must itself declare the value (it owns a view of it,
    # e.g. 11 renders one health check per enabled service).
    dotted = ".".join(str(p) for p in path if not isinstance(p, int))
    for name in changed - {NAME}:
        assert declares(GRAPH[name].config_sections, dotted), f"{where}: {name} changed without reading it"


def test_targets_cover_every_service_section_of_the_explicit_config() -> None:
    sections = {path[0] for base, _, path in TARGETS if base in ("explicit", "toggles")}
    assert sections == set(SERVICE_SECTIONS)  # `secrets` comes from the toggles fixture
    assert any(kind == "key" and path[0] == "environments" for _, kind, path in TARGETS)
