"""Which config edits move the state (and so need `doit move_state`), and what is recorded of a backend."""

from __future__ import annotations

from typing import Any

from stagegraph.schema.config import NebariConfig
from stagegraph.statelocation import LOCAL, configured_location

S3: dict[str, Any] = {
    "type": "existing",
    "backend": "s3",
    "config": {
        "bucket": "team",
        "key": "demo",
        "region": "us-east-1",
        "access_key": "AKIA-canary-value",
        "secret_key": "canary-secret-value",
        "skip_credentials_validation": "true",
    },
}


def config(state: dict[str, Any]) -> NebariConfig:
    return NebariConfig.model_validate(
        {"project_name": "demo", "provider": "sandbox", "terraform_state": state}
    )


def with_settings(**changes: str) -> dict[str, Any]:
    return {**S3, "config": {**S3["config"], **changes}}


def test_credentials_are_never_recorded_but_flags_are() -> None:
    where = configured_location(config(S3))
    assert where.backend == "s3" and where.kind == "existing"
    assert "access_key" not in where.settings and "secret_key" not in where.settings
    assert "canary" not in where.model_dump_json()
    assert where.settings["skip_credentials_validation"] == "true"  # a flag, needed to reach moto
    assert where.describe() == "s3://team/demo/"


def test_a_rotated_key_or_a_changed_flag_is_the_same_place_a_new_bucket_or_key_is_not() -> None:
    here = configured_location(config(S3)).place()
    assert configured_location(config(with_settings(secret_key="rotated"))).place() == here
    assert configured_location(config(with_settings(skip_region_validation="true"))).place() == here
    assert configured_location(config(with_settings(key="/demo.tfstate"))).place() == here  # same folder
    assert configured_location(config(with_settings(bucket="other"))).place() != here
    assert configured_location(config(with_settings(key="prod"))).place() != here
    assert configured_location(config({"type": "local"})).place() != here


def test_local_and_remote_without_a_cloud_are_local_state() -> None:
    assert configured_location(config({"type": "local"})) == LOCAL
    # `remote` on a provider without a cloud store keeps state next to each stage (stage 01's docs).
    assert configured_location(config({"type": "remote"})) == LOCAL
    assert configured_location(config({"type": "existing"})) == LOCAL  # no backend named
