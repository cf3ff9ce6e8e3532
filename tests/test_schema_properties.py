"""Hypothesis properties of the config models and of the error formatting.

Strategies are explicit: `st.builds(Model)` would ignore the models' patterns.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stagegraph.configfile import parse_config
from stagegraph.errors import ConfigError
from stagegraph.schema.base import TAG_MARK
from stagegraph.schema.config import NAMESPACE_RE, PROJECT_NAME_RE, NebariConfig
from stagegraph.schema.problems import describe, dotted

NAME = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{1,14}[A-Za-z0-9]\Z")
NAMESPACE = st.from_regex(r"\A[A-Za-z][A-Za-z_-]{0,10}[A-Za-z]\Z")
WORD = st.from_regex(r"\A[A-Za-z][A-Za-z0-9 ]{0,20}\Z")
QUANTITY = st.builds(
    lambda n, unit: f"{n}{unit}",
    st.integers(1, 4096),
    st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "G", "M"]),
)
CANARY = st.from_regex(r"\A[A-Za-z0-9]{12,24}\Z").map(lambda s: f"CANARY{s}")

SECRET_SLOTS: list[tuple[str, Any]] = [
    ("keycloak", lambda s: {"security": {"keycloak": {"initial_root_password": s}}}),
    (
        "github",
        lambda s: {
            "security": {
                "authentication": {"type": "GitHub", "config": {"client_id": "i", "client_secret": s}}
            }
        },
    ),
    (
        "auth0",
        lambda s: {
            "security": {
                "authentication": {
                    "type": "Auth0",
                    "config": {"client_id": "i", "client_secret": s, "auth0_subdomain": "x"},
                }
            }
        },
    ),
    ("extcr", lambda s: {"external_container_reg": {"enabled": False, "secret_access_key": s}}),
    (
        "gallery",
        lambda s: {
            "jupyterlab": {"gallery_settings": {"exhibits": [{"git": "g", "title": "t", "token": s}]}}
        },
    ),
]
BREAKAGES: list[dict[str, Any]] = [
    {},
    {"namespace": 5},
    {"monitoring": {"enabled": "perhaps"}},
    {"certificate": {"type": "letsencrypt"}},
    {"provider": "aws"},
    {"unknown_top": 1},
    {"profiles": {"jupyterlab": [{"display_name": "x"}]}},
]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@given(NAME)
def test_valid_project_names_are_accepted(name: str) -> None:
    assert NebariConfig.model_validate({"project_name": name}).project_name == name


@given(st.text(max_size=20))
def test_invalid_project_names_are_rejected_at_project_name(name: str) -> None:
    assume(re.match(PROJECT_NAME_RE, name) is None)
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump({"project_name": name}), "c")
    assert caught.value.problems[0].startswith("c: project_name: ")


@given(NAMESPACE)
def test_valid_namespaces_are_accepted(namespace: str) -> None:
    assert re.match(NAMESPACE_RE, namespace)
    assert (
        NebariConfig.model_validate({"project_name": "demo", "namespace": namespace}).namespace == namespace
    )


@settings(max_examples=60, deadline=None)
@given(
    canary=CANARY,
    slot=st.sampled_from(SECRET_SLOTS),
    breakage=st.sampled_from(BREAKAGES),
    misspell=st.booleans(),
)
def test_secrets_never_reach_errors_or_dumps(
    canary: str, slot: tuple[str, Any], breakage: dict[str, Any], misspell: bool
) -> None:
    _, place = slot
    data = _merge({"project_name": "demo"}, place(canary))
    if misspell:
        # The secret under a misspelled key of the same section.
        data = _merge(data, {"security": {"keycloak": {"initial_root_pasword": canary}}})
    data = _merge(data, breakage)
    text = yaml.safe_dump(data)
    try:
        config = parse_config(text, "c")
    except ConfigError as err:
        assert canary not in str(err)
        assert canary not in repr(err)
    else:
        assert canary not in repr(config)
        assert canary not in config.model_dump_json()


@given(st.lists(st.one_of(st.integers(0, 9), st.from_regex(r"\A[a-z_]{1,8}\Z")), max_size=6), st.data())
def test_dotted_paths_never_show_union_tags(parts: list[int | str], data: st.DataObject) -> None:
    loc: list[int | str] = []
    for part in parts:
        if data.draw(st.booleans()):
            loc.append(TAG_MARK + data.draw(st.sampled_from(["GitHub", "secret-plain", "int"])))
        loc.append(part)
    assert dotted(loc) == ".".join(str(p) for p in parts)


@given(st.dictionaries(st.from_regex(r"\A[a-z]{1,6}\Z"), CANARY, min_size=1, max_size=8))
def test_describe_shows_mapping_keys_never_values(mapping: dict[str, str]) -> None:
    shown = describe(mapping)
    assert shown.startswith("a mapping with keys ")
    assert not any(value in shown for value in mapping.values())


@given(st.text(max_size=500))
def test_describe_keeps_strings_short(text: str) -> None:
    assert len(describe(text)) <= 70


PROFILE = st.fixed_dictionaries(
    {
        "display_name": WORD,
        "description": WORD,
        "kubespawner_override": st.fixed_dictionaries(
            {
                "cpu_limit": st.floats(0.5, 64),
                "cpu_guarantee": st.floats(0.25, 64),
                "mem_limit": QUANTITY,
                "mem_guarantee": QUANTITY,
            }
        ),
    },
    optional={"access": st.sampled_from(["all", "keycloak"])},
)
YAML_PROFILE = PROFILE.map(lambda p: {**p, "access": "yaml", "users": ["alice"], "groups": ["admin"]})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(PROFILE, YAML_PROFILE), min_size=1, max_size=5), st.integers(0, 4))
def test_profiles_round_trip(profiles: list[dict[str, Any]], default_index: int) -> None:
    if default_index < len(profiles):
        profiles[default_index] = {**profiles[default_index], "default": True}
    config = parse_config(yaml.safe_dump({"project_name": "demo", "profiles": {"jupyterlab": profiles}}), "c")
    assert [p.display_name for p in config.profiles.jupyterlab] == [p["display_name"] for p in profiles]
    again = NebariConfig.model_validate(config.model_dump(mode="json"))
    assert again == config


@given(QUANTITY, QUANTITY)
def test_storage_quantities_are_accepted(conda: str, shared: str) -> None:
    config = NebariConfig.model_validate(
        {"project_name": "demo", "storage": {"conda_store": conda, "shared_filesystem": shared}}
    )
    assert (config.storage.conda_store, config.storage.shared_filesystem) == (conda, shared)


TAINT_KEY = st.from_regex(r"\A[a-z][a-z0-9.-]{0,10}[a-z0-9](/[a-z][a-z0-9-]{0,8}[a-z0-9])?\Z")
TAINT_VALUE = st.one_of(st.none(), st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,8}[a-z0-9]\Z"))
EFFECT = st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"])


@given(TAINT_KEY, TAINT_VALUE, EFFECT)
def test_taint_string_and_mapping_forms_agree(key: str, value: str | None, effect: str) -> None:
    text = f"{key}={value}:{effect}" if value is not None else f"{key}:{effect}"
    groups = {
        "general": {"instance": "m5.large", "taints": [text]},
        "user": {"instance": "m5.large", "taints": [{"key": key, "value": value, "effect": effect}]},
    }
    config = NebariConfig.model_validate(
        {
            "project_name": "demo",
            "provider": "aws",
            "amazon_web_services": {
                "region": "us-east-1",
                "kubernetes_version": "1.31",
                "node_groups": groups,
            },
        }
    )
    assert config.amazon_web_services is not None
    parsed = config.amazon_web_services.node_groups
    assert parsed["general"].taints == parsed["user"].taints
