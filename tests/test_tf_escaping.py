"""A config string never becomes a Terraform template, keys included (issue 12 item 2).

Terraform JSON evaluates every string, object keys too, as a template: `${...}` and
`%{...}` in user data would run as code (`${file("/etc/hostname")}` reads the machine).

1. `literal()` of arbitrary nested data comes back from real Terraform exactly as given.
2. Arbitrary nested data in any free-form config field, and an injection in any config
   string, adds no template sequence to any rendered stage.
3. End to end: an override key that reads a file reaches the sandbox's state as text.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from confmutate import declares, set_at, valid_or_skip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandboxproject import SandboxProject

from stagegraph.errors import RenderError
from stagegraph.graph import build_graph
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stages.builtin import BUILTIN_STAGES
from stagegraph.terraform import Terraform, find_terraform
from stagegraph.tfjson import literal

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
GRAPH = build_graph(BUILTIN_STAGES)
BASE = yaml.safe_load((ROOT / "nebari-config.yaml").read_text())

#: Pieces that mean something to Terraform's template syntax, escaped or not.
_TRICKY = ["${", "%{", "$${", "%%{", "$", "%", "{", "}", "~}", '${file("/etc/hostname")}', "%{ if true }"]
_text = st.lists(st.one_of(st.sampled_from(_TRICKY), st.text(max_size=3)), max_size=5).map("".join)
_scalars = st.one_of(_text, st.booleans(), st.integers(-(2**40), 2**40))
user_data = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_text.filter(bool), inner, max_size=3)
    ),
    max_leaves=12,
)


def template_openers(node: Any) -> Counter[str]:
    """Every `${` / `%{` Terraform would evaluate in a JSON document, keys included.

    Scanned as Terraform does: `$${` and `%%{` are escapes for a literal `${` / `%{`.
    """
    found: Counter[str] = Counter()
    if isinstance(node, dict):
        for key, value in node.items():
            found += template_openers(key) + template_openers(value)
    elif isinstance(node, list):
        for item in node:
            found += template_openers(item)
    elif isinstance(node, str):
        i = 0
        while i < len(node):
            pair = node[i : i + 2]
            if node[i : i + 3] in ("$${", "%%{"):
                i += 3
            elif pair in ("${", "%{"):
                found[pair] += 1
                i += 2
            else:
                i += 1
    return found


def _rendered_openers(config: NebariConfig, path: tuple[str, ...]) -> dict[str, Counter[str]]:
    """Template openers per stage, for the stages that read `path` (no other stage can:
    a render reading an undeclared section fails)."""
    dotted = ".".join(p for p in path if not p.isdigit())
    out = {}
    for stage in GRAPH.stages:
        if not declares(stage.config_sections, dotted):
            continue
        files = render_stage(stage, config, LOCK, "lockfiles/versions.yaml").files
        out[stage.name] = sum(
            (template_openers(json.loads(data)) for name, data in files.items() if name.endswith(".json")),
            Counter(),
        )
    return out


# --- 1. through real Terraform ------------------------------------------------------------


@pytest.fixture(scope="module")
def terraform_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Terraform, Path]:
    workdir = tmp_path_factory.mktemp("literal")
    (workdir / "main.tf.json").write_text(json.dumps({"output": {"v": {"value": "init"}}}))
    tf = Terraform(find_terraform("auto"), workdir, workdir / "tf.log")
    tf.init()
    return tf, workdir


@given(user_data)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_literal_data_comes_back_from_terraform_unchanged(
    terraform_dir: tuple[Terraform, Path], data: Any
) -> None:
    tf, workdir = terraform_dir
    # Wrapped in a list: an output must have a value, and `[]`/`{}` keep their type there.
    (workdir / "main.tf.json").write_text(json.dumps({"output": {"v": {"value": [literal(data)]}}}))
    tf.apply()
    assert tf.output()["v"].value == [data]


def test_an_unescaped_key_is_evaluated_by_terraform(terraform_dir: tuple[Terraform, Path]) -> None:
    """The attack is real: without escaping, Terraform runs a key as a template."""
    tf, workdir = terraform_dir
    (workdir / "main.tf.json").write_text(json.dumps({"output": {"v": {"value": {'${upper("k")}': 1}}}}))
    tf.apply()
    assert tf.output()["v"].value == {"K": 1}


# --- 2. every way config data reaches a render ----------------------------------------------

#: Every free-form mapping of the config (user data passed on to Helm, Keycloak, JupyterLab).
FREE_FORM = [
    ("helm_extensions", "0", "overrides"),
    ("security", "keycloak", "overrides"),
    ("jupyterhub", "overrides"),
    ("jupyterlab", "default_settings"),
    ("jhub_apps", "overrides"),
    ("ingress", "terraform_overrides"),
]


def _with_extension(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["helm_extensions"] = [
        {"name": "my-app", "repository": "https://charts.example.com", "chart": "app", "version": "1.0.0"}
    ]
    data.setdefault("jhub_apps", {})["enabled"] = True
    return data


def _set_creating(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[path[-1]] = value


@given(st.sampled_from(FREE_FORM), st.dictionaries(_text.filter(bool), user_data, min_size=1, max_size=3))
@settings(max_examples=30, deadline=None)
def test_free_form_config_data_adds_no_template(path: tuple[str, ...], value: dict[str, Any]) -> None:
    base = _with_extension(BASE)
    changed = copy.deepcopy(base)
    _set_creating(changed, path, value)
    before = _rendered_openers(NebariConfig.model_validate(base), path)
    after = _rendered_openers(valid_or_skip(changed), path)
    assert after == before


def _string_leaves(data: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _string_leaves(v, (*prefix, str(k)))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _string_leaves(v, (*prefix, str(i)))]
    return [prefix] if isinstance(data, str) else []


_EXPLICIT = yaml.safe_load(
    (ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml").read_text()
)


@given(
    st.sampled_from(
        [("sandbox", p) for p in _string_leaves(_with_extension(BASE))]
        + [("explicit", p) for p in _string_leaves(_EXPLICIT)]
    ),
    st.sampled_from(['${file("/etc/hostname")}', "%{ if true }x%{ endif }", "a${b}"]),
)
@settings(max_examples=60, deadline=None)
def test_an_injection_in_any_config_string_adds_no_template(
    where: tuple[str, tuple[str, ...]], attack: str
) -> None:
    base = _with_extension(BASE) if where[0] == "sandbox" else _EXPLICIT
    changed = copy.deepcopy(base)
    old = changed
    for part in where[1][:-1]:
        old = old[int(part)] if isinstance(old, list) else old[part]
    leaf = where[1][-1]
    set_at(changed, where[1], str(old[int(leaf)] if isinstance(old, list) else old[leaf]) + attack)
    config = valid_or_skip(changed)
    try:
        after = _rendered_openers(config, where[1])
    except RenderError:
        return  # refused with a one-line error (an image reference, say): nothing reaches Terraform
    assert after == _rendered_openers(NebariConfig.model_validate(base), where[1])


# --- 3. end to end --------------------------------------------------------------------------


def test_an_override_key_that_reads_a_file_stays_text_in_state(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "deploy")
    key = '${file("/etc/hostname")}'
    project.edit_config(
        lambda c: c.update(
            helm_extensions=[
                {
                    "name": "my-app",
                    "repository": "https://charts.example.com",
                    "chart": "app",
                    "version": "1.0.0",
                    "overrides": {key: {"%{ if true }k%{ endif }": '${upper("v")}'}},
                }
            ]
        )
    )
    project.doit("deploy")
    state = next((project.root / "stages").rglob("08-nebari-tf-extensions/terraform.tfstate"))
    values = [
        json.loads(r["instances"][0]["attributes"]["input"]["value"]["values"][0])
        for r in json.loads(state.read_text())["resources"]
        if r["name"].startswith("helm_release__")
    ]
    assert values == [{key: {"%{ if true }k%{ endif }": '${upper("v")}'}}]
