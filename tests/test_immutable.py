"""The table of immutable fields, compared with what applied stages recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stagegraph.configfile import parse_config
from stagegraph.immutable import IMMUTABLE, ImmutableFieldError, check_unchanged, immutable_values
from stagegraph.records import RecordStore, StageRecord
from stagegraph.schema.config import NebariConfig

BASE = "project_name: demo\nprovider: existing\nexisting:\n  kube_context: ctx-a\nstorage:\n  type: nfs\n"


def config(text: str = BASE) -> NebariConfig:
    return parse_config(text, "nebari-config.yaml")


def applied(tmp_path: Path, cfg: NebariConfig, stage: str = "02-infrastructure", age: int = 0) -> StageRecord:
    return RecordStore(tmp_path).record_success(
        stage,
        fingerprint="f",
        inputs={},
        outputs={},
        attempted_at=datetime.now(UTC),
        applied_at=datetime.now(UTC) - timedelta(minutes=age),
        immutable=immutable_values(cfg),
    )


def test_every_field_of_the_table_exists_in_the_config_model() -> None:
    for path in IMMUTABLE:
        model: type = NebariConfig
        for part in path.split("."):
            assert part in model.model_fields, path
            annotation = model.model_fields[part].annotation
            inner = [a for a in getattr(annotation, "__args__", (annotation,)) if hasattr(a, "model_fields")]
            model = inner[0] if inner else object


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (BASE.replace("type: nfs", "type: cephfs"), "storage.type"),
        (BASE.replace("project_name: demo", "project_name: other"), "project_name"),
        (BASE + "namespace: prod\n", "namespace"),
    ],
)
def test_change_is_refused_naming_the_field_unless_allowed(tmp_path: Path, change: str, field: str) -> None:
    records = {"02-infrastructure": applied(tmp_path, config())}
    with pytest.raises(ImmutableFieldError) as err:
        check_unchanged(config(change), records, [], "nebari-config.yaml")
    assert str(err.value).startswith(f"nebari-config.yaml: {field}: changed from ")
    assert f"--allow-change {field}" in str(err.value)
    assert check_unchanged(config(change), records, [field], "nebari-config.yaml") != []


def test_provider_change_is_refused(tmp_path: Path) -> None:
    records = {"02-infrastructure": applied(tmp_path, config())}
    with pytest.raises(ImmutableFieldError, match="provider: changed from 'existing'"):
        check_unchanged(config("project_name: demo\nprovider: local\n"), records, [], "nebari-config.yaml")


def test_newest_applied_record_wins_and_destroyed_ones_do_not_count(tmp_path: Path) -> None:
    old, new = config(), config(BASE.replace("project_name: demo", "project_name: other"))
    records = {
        "01-terraform-state": applied(tmp_path, old, "01-terraform-state", age=10),
        "02-infrastructure": applied(tmp_path, new, "02-infrastructure", age=1),
    }
    assert check_unchanged(new, records, [], "nebari-config.yaml") == []
    destroyed = RecordStore(tmp_path).record_destroyed("02-infrastructure")
    with pytest.raises(ImmutableFieldError):
        check_unchanged(new, {**records, "02-infrastructure": destroyed}, [], "nebari-config.yaml")


def test_nothing_applied_nothing_to_compare() -> None:
    assert check_unchanged(config(), {}, [], "nebari-config.yaml") == []


def test_a_section_coming_into_use_is_no_change(tmp_path: Path) -> None:
    records = {"02-infrastructure": applied(tmp_path, config("project_name: demo\nprovider: local\n"))}
    moved = config(BASE)  # provider existing, with its own kube_context
    accepted = check_unchanged(moved, records, ["provider"], "nebari-config.yaml")
    assert accepted == ["provider: 'local' -> 'existing'"]


def test_storage_type_default_is_compared_as_what_it_means(tmp_path: Path) -> None:
    records = {
        "02-infrastructure": applied(tmp_path, config(BASE.replace("  type: nfs\n", "  type: null\n")))
    }
    assert check_unchanged(config(BASE), records, [], "nebari-config.yaml") == []  # null meant nfs
