"""A Keycloak applied on dev-file is not switched to PostgreSQL (an empty realm) unasked.

Records written before the Keycloak database was recorded hold no value for it; for stage
05 they mean dev-file, which every earlier release ran unless the overrides named another.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stagegraph.configfile import parse_config
from stagegraph.immutable import ImmutableFieldError, check_unchanged, immutable_values
from stagegraph.records import RecordStore, StageRecord
from stagegraph.schema.config import NebariConfig

BASE = "project_name: demo\nprovider: existing\nexisting:\n  kube_context: ctx-a\n"
KEEP = BASE + "security:\n  keycloak:\n    overrides:\n      database:\n        vendor: dev-file\n"
FIELD = "security.keycloak.database"


def config(text: str = BASE) -> NebariConfig:
    return parse_config(text, "nebari-config.yaml")


def applied(tmp_path: Path, stage: str, immutable: dict[str, object], age: int = 0) -> StageRecord:
    return RecordStore(tmp_path).record_success(
        stage,
        fingerprint="f",
        inputs={},
        outputs={},
        attempted_at=datetime.now(UTC),
        applied_at=datetime.now(UTC) - timedelta(minutes=age),
        immutable=immutable,
    )


def old_release(tmp_path: Path) -> dict[str, StageRecord]:
    """Records of a release that did not record the database: 05 ran dev-file."""
    before = {k: v for k, v in immutable_values(config()).items() if k != FIELD}
    return {
        "02-infrastructure": applied(tmp_path, "02-infrastructure", before, age=10),
        "05-kubernetes-keycloak": applied(tmp_path, "05-kubernetes-keycloak", before, age=5),
    }


def test_switching_an_old_dev_file_keycloak_is_refused_in_one_line_naming_the_ways_forward(
    tmp_path: Path,
) -> None:
    with pytest.raises(ImmutableFieldError) as err:
        check_unchanged(config(), old_release(tmp_path), [], "nebari-config.yaml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"nebari-config.yaml: {FIELD}: changed from 'dev-file' (applied by stage 05-kubernetes-keycloak) "
        "to 'postgres'"
    )
    assert "vendor: dev-file" in message and f"--allow-change {FIELD}" in message and "doit backup" in message


def test_keeping_dev_file_through_the_overrides_deploys(tmp_path: Path) -> None:
    assert check_unchanged(config(KEEP), old_release(tmp_path), [], "nebari-config.yaml") == []


def test_the_flag_allows_it_once_and_the_next_apply_records_postgres(tmp_path: Path) -> None:
    records = old_release(tmp_path)
    accepted = check_unchanged(config(), records, [FIELD], "nebari-config.yaml")
    assert accepted == [f"{FIELD}: 'dev-file' -> 'postgres'"]
    records["05-kubernetes-keycloak"] = applied(
        tmp_path, "05-kubernetes-keycloak", immutable_values(config())
    )
    assert check_unchanged(config(), records, [], "nebari-config.yaml") == []


def test_an_old_keycloak_the_overrides_already_moved_off_dev_file_is_not_refused(tmp_path: Path) -> None:
    moved = BASE + "security:\n  keycloak:\n    overrides:\n      database:\n        vendor: postgres\n"
    assert check_unchanged(config(moved), old_release(tmp_path), [], "nebari-config.yaml") == []


def test_new_deployments_and_destroyed_keycloaks_have_nothing_to_lose(tmp_path: Path) -> None:
    assert check_unchanged(config(), {}, [], "nebari-config.yaml") == []
    records = old_release(tmp_path)
    records["05-kubernetes-keycloak"] = RecordStore(tmp_path).record_destroyed("05-kubernetes-keycloak")
    assert check_unchanged(config(), records, [], "nebari-config.yaml") == []


def test_going_back_from_postgres_to_dev_file_is_refused_too(tmp_path: Path) -> None:
    records = {
        "05-kubernetes-keycloak": applied(tmp_path, "05-kubernetes-keycloak", immutable_values(config()))
    }
    with pytest.raises(ImmutableFieldError, match="changed from 'postgres'"):
        check_unchanged(config(KEEP), records, [], "nebari-config.yaml")


@pytest.mark.e2e
def test_doit_deploy_refuses_the_switch_then_applies_it_once_allowed(tmp_path: Path) -> None:
    from sandboxproject import SandboxProject

    project = SandboxProject.create(tmp_path / "p")

    def keep(c: dict[str, object]) -> None:
        c.setdefault("security", {}).setdefault("keycloak", {}).setdefault("overrides", {})["database"] = {  # type: ignore[union-attr]
            "vendor": "dev-file"
        }

    project.edit_config(keep)
    project.doit("deploy")
    assert project.records()["05-kubernetes-keycloak"]["immutable"][FIELD] == "dev-file"

    project.edit_config(lambda c: c["security"]["keycloak"].pop("overrides"))  # type: ignore[index]
    refused = project.doit("deploy", check=False)
    assert refused.returncode != 0
    out = refused.stdout + refused.stderr
    assert f"{FIELD}: changed from 'dev-file'" in out and f"--allow-change {FIELD}" in out
    assert project.records()["05-kubernetes-keycloak"]["immutable"][FIELD] == "dev-file"  # nothing applied

    project.doit("deploy", "--allow-change", FIELD)
    assert "05-kubernetes-keycloak" in project.applied_in_last_run()
    assert project.records()["05-kubernetes-keycloak"]["immutable"][FIELD] == "postgres"
    project.doit("deploy")  # recorded: needed once


def test_an_old_sqlite_conda_store_is_not_switched_to_postgresql_unasked(tmp_path: Path) -> None:
    conda = "conda_store.database"
    before = {k: v for k, v in immutable_values(config()).items() if k not in (FIELD, conda)}
    records = {"07-kubernetes-services": applied(tmp_path, "07-kubernetes-services", before)}
    with pytest.raises(ImmutableFieldError) as err:
        check_unchanged(config(), records, [], "nebari-config.yaml")
    message = str(err.value)
    assert message.startswith(
        f"nebari-config.yaml: {conda}: changed from 'sqlite' (applied by stage 07-kubernetes-services) "
        "to 'postgresql'"
    )
    assert "Put it back" not in message and f"Deploy with `doit deploy --allow-change {conda}`" in message
    assert check_unchanged(config(), records, [conda], "nebari-config.yaml") == [
        f"{conda}: 'sqlite' -> 'postgresql'"
    ]


def test_moving_to_a_database_server_of_ones_own_is_guarded_too(tmp_path: Path) -> None:
    # Keycloak would start on an empty database there: the realm's users stay behind.
    records = {
        "05-kubernetes-keycloak": applied(tmp_path, "05-kubernetes-keycloak", immutable_values(config()))
    }
    theirs = BASE + "security:\n  keycloak:\n    overrides:\n      database:\n        hostname: db.example\n"
    with pytest.raises(ImmutableFieldError, match="changed from 'postgres'"):
        check_unchanged(config(theirs), records, [], "nebari-config.yaml")
    assert immutable_values(config(theirs))[FIELD] == "external postgres at db.example"
