"""Properties of rendering that incremental deploys rely on.

1. Render is deterministic: the same config gives byte-identical files.
2. A change to one config value changes the rendered files of only the stages that declare
   a config section covering it, and changes the render inputs of every stage that does
   (so exactly those stages re-render, and only they can re-apply).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from confmutate import declares, mutate, set_at, valid_or_skip
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stagegraph.graph import build_graph
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stages.builtin import BUILTIN_STAGES

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
GRAPH = build_graph(BUILTIN_STAGES)
BASES = {
    "sandbox": yaml.safe_load((ROOT / "nebari-config.yaml").read_text()),
    "explicit": yaml.safe_load(
        (ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml").read_text()
    ),
}


def _leaves(data: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            out += _leaves(value, (*prefix, str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _leaves(value, (*prefix, str(i)))
    elif isinstance(data, (str, bool, int, float)):
        out.append((prefix, data))
    return out


def _render_all(config: NebariConfig) -> dict[str, tuple[dict[str, bytes], str]]:
    out = {}
    for stage in GRAPH.stages:
        rendered = render_stage(stage, config, LOCK, "lockfiles/versions.yaml")
        out[stage.name] = (dict(rendered.files), rendered.digest)
    return out


def dotted_exact(sections: tuple[str, ...], dotted: str) -> bool:
    """The stage reads this value itself (a declared section is the value or contains it)."""
    return any(dotted == s or dotted.startswith(s + ".") for s in sections)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, tuple[str, ...], Any]:
    base = draw(st.sampled_from(sorted(BASES)))
    path, value = draw(st.sampled_from(_leaves(BASES[base])))
    return base, path, mutate(value)


@given(mutations())
@settings(max_examples=120, deadline=None)
def test_one_value_changes_only_the_stages_that_declare_it(change: tuple[str, tuple[str, ...], Any]) -> None:
    base_name, path, new_value = change
    data = copy.deepcopy(BASES[base_name])
    set_at(data, path, new_value)
    changed_config = valid_or_skip(data)
    assume(changed_config.provider in ("sandbox", "local", "existing"))
    before = _render_all(NebariConfig.model_validate(BASES[base_name]))
    after = _render_all(changed_config)
    dotted = ".".join(p for p in path if not p.isdigit())
    for stage in GRAPH.stages:
        files_changed = before[stage.name][0] != after[stage.name][0]
        declared = declares(stage.config_sections, dotted)
        if files_changed:
            assert declared, f"{stage.name} changed for {dotted} without declaring it"
        if declared and dotted_exact(stage.config_sections, dotted):
            assert before[stage.name][1] != after[stage.name][1], (
                f"{stage.name} reads {dotted}: must re-render"
            )


@given(st.sampled_from(sorted(BASES)))
@settings(max_examples=4, deadline=None)
def test_render_is_deterministic(base_name: str) -> None:
    config = NebariConfig.model_validate(BASES[base_name])
    assert _render_all(config) == _render_all(NebariConfig.model_validate(copy.deepcopy(BASES[base_name])))
