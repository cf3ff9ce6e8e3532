"""Secrets: plaintext or a SOPS reference, masked in every repr, dump and error message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from stagegraph.configfile import load_config, parse_config
from stagegraph.errors import ConfigError
from stagegraph.schema.config import NebariConfig
from stagegraph.schema.introspect import ANY, walk_fields
from stagegraph.schema.secret import SecretRef, is_secret_annotation, secret_fields

CANARY = "CANARY-7f3a9e-plaintext"
FIXTURES = Path(__file__).parent / "fixtures" / "configs"


def _all_secrets_config(secret: str) -> dict[str, object]:
    """A config with the secret in every kind of secret field."""
    return {
        "project_name": "demo",
        "security": {
            "authentication": {"type": "GitHub", "config": {"client_id": "id", "client_secret": secret}},
            "keycloak": {"initial_root_password": secret},
        },
        "external_container_reg": {
            "enabled": True,
            "access_key_id": "AKIA",
            "secret_access_key": secret,
            "extcr_account": "1",
            "extcr_region": "us-east-1",
        },
        "jupyterlab": {
            "gallery_settings": {"exhibits": [{"git": "https://g", "title": "t", "token": secret}]}
        },
    }


def _text(data: object) -> str:
    return yaml.safe_dump(data)


def _error_text(data: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(_text(data), "nebari-config.yaml")
    return str(caught.value)


def test_secrets_are_masked_in_repr_str_and_dumps() -> None:
    config = parse_config(_text(_all_secrets_config(CANARY)), "c")
    renderings = [
        repr(config),
        str(config),
        json.dumps(config.model_dump(mode="json")),
        config.model_dump_json(),
        repr(config.model_dump()),
        repr(config.security),
        str(config.security.keycloak.initial_root_password),
    ]
    for rendering in renderings:
        assert CANARY not in rendering
    assert config.model_dump(mode="json")["security"]["keycloak"]["initial_root_password"] == "**********"


def test_plaintext_is_available_on_purpose() -> None:
    config = parse_config(_text(_all_secrets_config(CANARY)), "c")
    password = config.security.keycloak.initial_root_password
    assert isinstance(password, SecretStr)
    assert password.get_secret_value() == CANARY


def test_secret_fields_lists_every_secret_by_dotted_path() -> None:
    config = parse_config(_text(_all_secrets_config(CANARY)), "c")
    found = secret_fields(config)
    assert [path for path, _ in found] == [
        "security.authentication.config.client_secret",
        "security.keycloak.initial_root_password",
        "external_container_reg.secret_access_key",
        "jupyterlab.gallery_settings.exhibits.0.token",
    ]
    assert all(isinstance(value, SecretStr) and value.get_secret_value() == CANARY for _, value in found)


def test_secret_fields_includes_references() -> None:
    config = load_config(FIXTURES / "explicit-existing.happy.yaml")
    found = dict(secret_fields(config))
    assert found["security.keycloak.initial_root_password"] == SecretRef.model_validate(
        {"sops": "secrets/keycloak.enc.yaml", "key": "keycloak.initial_root_password"}
    )
    assert sorted(found) == [
        "external_container_reg.secret_access_key",
        "jupyterlab.gallery_settings.exhibits.1.token",
        "security.authentication.config.client_secret",
        "security.keycloak.initial_root_password",
    ]


def test_unset_secrets_are_not_listed() -> None:
    assert secret_fields(parse_config("project_name: demo\n", "c")) == []


def test_error_in_a_sibling_field_does_not_show_the_secret() -> None:
    data = _all_secrets_config(CANARY)
    data["security"]["keycloak"]["realm_display_name"] = 3  # type: ignore[index]
    assert CANARY not in _error_text(data)


@pytest.mark.parametrize(
    "bad",
    [
        [CANARY],
        {"sops": CANARY, "key": "k"},
        {"sops": "secrets/a.yaml", "key": f"{CANARY} with spaces"},
        {"sops": "secrets/a.yaml", "key": "k", "value": CANARY},
        {CANARY: 1},
    ],
    ids=["list", "bad-path", "bad-key", "extra-key", "key-name"],
)
def test_invalid_secret_value_is_redacted(bad: object) -> None:
    data = {"project_name": "demo", "security": {"keycloak": {"initial_root_password": bad}}}
    text = _error_text(data)
    assert CANARY not in text
    assert "(got <redacted>)" in text


def test_a_secret_written_as_a_mapping_key_is_hidden() -> None:
    # `initial_root_password: {hunter2}` is a mapping with the key hunter2 in YAML.
    text = _error_text(
        yaml.safe_load(f"project_name: demo\nsecurity: {{keycloak: {{initial_root_password: {{{CANARY}}}}}}}")
    )
    assert text == (
        "nebari-config.yaml: security.keycloak.initial_root_password.sops: required key is missing (got nothing)\n"
        "nebari-config.yaml: security.keycloak.initial_root_password.key: required key is missing (got nothing)\n"
        "nebari-config.yaml: security.keycloak.initial_root_password: unknown key (name hidden, it may be the "
        "secret); allowed keys: sops, key (got <redacted>)"
    )


def test_misspelled_secret_key_is_redacted() -> None:
    data = {"project_name": "demo", "security": {"keycloak": {"initial_root_passwrd": CANARY}}}
    assert _error_text(data) == (
        "nebari-config.yaml: security.keycloak.initial_root_passwrd: unknown key; "
        "did you mean 'initial_root_password'? (got <redacted>)"
    )


@pytest.mark.parametrize("key", ["api_token", "db_password", "client_secret_x", "my_credentials", "apikey"])
def test_unknown_keys_that_look_secret_are_redacted(key: str) -> None:
    data = {"project_name": "demo", "dns": {key: CANARY}}
    text = _error_text(data)
    assert CANARY not in text
    assert text.endswith("(got <redacted>)")


def test_model_level_errors_do_not_dump_the_section() -> None:
    data = _all_secrets_config(CANARY)
    del data["external_container_reg"]["extcr_region"]  # type: ignore[attr-defined]
    assert _error_text(data) == (
        "nebari-config.yaml: external_container_reg.extcr_region: required when enabled is true (got null)"
    )


def test_union_type_errors_show_only_the_type() -> None:
    data = {
        "project_name": "demo",
        "security": {
            "authentication": {"type": "github", "config": {"client_id": "i", "client_secret": CANARY}}
        },
    }
    assert _error_text(data) == (
        "nebari-config.yaml: security.authentication.type: should be one of password, GitHub, Auth0, custom (got 'github')"
    )


def test_wrong_section_type_summarises_keys_not_values() -> None:
    data = {"project_name": "demo", "security": [{"keycloak": {"initial_root_password": CANARY}}]}
    text = _error_text(data)
    assert CANARY not in text


def test_provider_section_mismatch_does_not_dump_values() -> None:
    data = _all_secrets_config(CANARY)
    data["provider"] = "aws"
    text = _error_text(data)
    assert CANARY not in text
    assert "amazon_web_services: required when provider is aws (got nothing)" in text


def test_the_canary_config_covers_every_secret_field() -> None:
    """A new secret field must be added to `_all_secrets_config`, so the tests above cover it."""
    declared = {
        path.replace(f".{ANY}", ".0")
        for path, _, _, field in walk_fields(NebariConfig)
        if is_secret_annotation(field.annotation)
    }
    config = parse_config(_text(_all_secrets_config(CANARY)), "c")
    assert declared == {path for path, _ in secret_fields(config)}


def test_dump_of_config_has_no_plaintext_anywhere_for_fixtures() -> None:
    for path in sorted(FIXTURES.glob("*.happy.yaml")):
        config = load_config(path)
        dumped = config.model_dump_json()
        for _, value in secret_fields(config):
            if isinstance(value, SecretStr):
                assert value.get_secret_value() not in dumped, path.name
