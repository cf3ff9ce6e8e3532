"""The loader: where the config comes from, and one clear line for each way reading fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from stagegraph import configfile
from stagegraph.configfile import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    load_config,
    parse_config,
    resolve_config_path,
)
from stagegraph.errors import ConfigError, StagegraphError

MINIMAL = "project_name: demo\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "nebari-config.yaml")
    return caught.value.problems


# -- where the config comes from ---------------------------------------------------------


def test_explicit_path_wins_over_env_and_default(tmp_path: Path) -> None:
    env = {CONFIG_ENV: "from-env.yaml"}
    assert resolve_config_path("explicit.yaml", env, tmp_path) == tmp_path / "explicit.yaml"


def test_env_var_wins_over_default(tmp_path: Path) -> None:
    assert resolve_config_path(None, {CONFIG_ENV: "env.yaml"}, tmp_path) == tmp_path / "env.yaml"


def test_default_name_under_root(tmp_path: Path) -> None:
    assert resolve_config_path(None, {}, tmp_path) == tmp_path / DEFAULT_CONFIG


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere" / "c.yaml"
    assert resolve_config_path(str(absolute), {}, Path("/unrelated")) == absolute


def test_empty_values_fall_through(tmp_path: Path) -> None:
    assert resolve_config_path("", {CONFIG_ENV: ""}, tmp_path) == tmp_path / DEFAULT_CONFIG


# -- reading the file --------------------------------------------------------------------


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nebari-config.yaml", display_name="nebari-config.yaml")
    assert caught.value.problems == [
        f"nebari-config.yaml: file not found; create one with `doit init`, or point {CONFIG_ENV} at your config"
    ]
    assert isinstance(caught.value, StagegraphError)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^cfg: is a directory, not a file; point STAGEGRAPH_CONFIG at"):
        load_config(tmp_path, display_name="cfg")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL)
    path.chmod(0)
    with pytest.raises(
        ConfigError, match=r"^c.yaml: cannot read the file \(Permission denied\); check its permissions$"
    ):
        load_config(path, display_name="c.yaml")


def test_unreadable_file_via_oserror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "c.yaml", display_name="c.yaml")
    assert caught.value.problems == [
        "c.yaml: cannot read the file (Permission denied); check its permissions"
    ]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"project_name: d\xffmo\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, display_name="c.yaml")
    assert caught.value.problems == ["c.yaml: not UTF-8 text (bad byte at offset 15); save the file as UTF-8"]


def test_display_name_defaults_to_the_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("project_name: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.file == str(path)
    assert caught.value.problems[0].startswith(f"{path}: project_name: ")


def test_loads_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL)
    assert load_config(path).project_name == "demo"


# -- YAML --------------------------------------------------------------------------------


def test_uses_the_c_loader_when_available() -> None:
    if getattr(yaml, "CSafeLoader", None) is None:
        pytest.skip("PyYAML built without libyaml")
    assert issubclass(configfile._Loader, yaml.CSafeLoader)


def test_yaml_syntax_error_names_line_and_column() -> None:
    assert _problems("project_name: demo\nprovider: [local\n") == [
        "nebari-config.yaml: line 3, column 1: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 2, column 11); fix the YAML there"
    ]


def test_tabs_are_a_syntax_error() -> None:
    (problem,) = _problems("project_name: demo\nsecurity:\n\tkeycloak: {}\n")
    assert problem.startswith("nebari-config.yaml: line 3, column 1: ")
    assert problem.endswith("; fix the YAML there")


def test_python_tags_are_refused() -> None:
    (problem,) = _problems("project_name: !!python/object/apply:os.system ['true']\n")
    assert problem.startswith("nebari-config.yaml: line 1, column 15: ")


def test_duplicate_keys_are_errors_at_any_depth() -> None:
    text = (
        "project_name: demo\nsecurity:\n  keycloak:\n    realm_display_name: a\n    realm_display_name: b\n"
    )
    assert _problems(text) == [
        "nebari-config.yaml: line 5, column 5: duplicate key 'realm_display_name' (first at line 4); remove one of them"
    ]


def test_merge_keys_are_not_duplicates() -> None:
    text = "project_name: demo\nmonitoring:\n  <<: {enabled: false}\n  minio_enabled: false\n"
    assert parse_config(text, "c").monitoring.enabled is False


@pytest.mark.parametrize("text", ["", "\n", "# just a comment\n", "---\n", "~\n"])
def test_empty_file(text: str) -> None:
    assert _problems(text) == [
        "nebari-config.yaml: the file is empty; write a config with `doit init` (project_name is required)"
    ]


@pytest.mark.parametrize(
    ("text", "shown"),
    [("- a\n- b\n", "a list of 2 items"), ("just text\n", "'just text'"), ("42\n", "42")],
)
def test_top_level_must_be_a_mapping(text: str, shown: str) -> None:
    assert _problems(text) == [
        f"nebari-config.yaml: the top level should be a mapping of keys such as project_name and provider (got {shown})"
    ]


# -- validation problems -----------------------------------------------------------------


def test_problem_format_from_the_guide() -> None:
    text = MINIMAL + "security:\n  keycloak:\n    realm_display_name: 3\n"
    assert _problems(text) == [
        "nebari-config.yaml: security.keycloak.realm_display_name: Input should be a valid string (got 3)"
    ]


def test_did_you_mean() -> None:
    text = MINIMAL + "security:\n  keycloak:\n    realm_display_nme: x\n"
    assert _problems(text) == [
        "nebari-config.yaml: security.keycloak.realm_display_nme: unknown key; did you mean 'realm_display_name'? (got 'x')"
    ]


def test_did_you_mean_inside_a_union_member() -> None:
    text = MINIMAL + "certificate:\n  type: lets-encrypt\n  acme_email: a@b.co\n  acme_servr: https://x\n"
    assert _problems(text) == [
        "nebari-config.yaml: certificate.acme_servr: unknown key; did you mean 'acme_server'? (got 'https://x')"
    ]


def test_did_you_mean_uses_the_alias() -> None:
    text = MINIMAL + "stagegraph:\n  plugins:\n    imprt: [x]\n"
    assert _problems(text) == [
        "nebari-config.yaml: stagegraph.plugins.imprt: unknown key; did you mean 'import'? (got a list of 1 item)"
    ]


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    text = MINIMAL + "dns:\n  zzz: 1\n"
    assert _problems(text) == [
        "nebari-config.yaml: dns.zzz: unknown key; allowed keys: provider, auto_provision (got 1)"
    ]


def test_list_indices_appear_in_the_path() -> None:
    text = (
        MINIMAL
        + "helm_extensions:\n  - {name: a, repository: r, chart: c, version: '1'}\n  - {name: b, repository: r, chart: c}\n"
    )
    assert _problems(text) == [
        "nebari-config.yaml: helm_extensions.1.version: required key is missing (got nothing)"
    ]


def test_all_problems_are_reported_at_once() -> None:
    text = "project_name: 1x\nnamespace: 9\nmonitoring: {enabled: sometimes}\n"
    assert [problem.split(": ")[1] for problem in _problems(text)] == [
        "namespace",
        "project_name",
        "monitoring.enabled",
    ]


def test_discriminated_union_gives_one_error_not_one_per_member() -> None:
    text = MINIMAL + "security:\n  authentication:\n    type: Auth0\n    config:\n      client_id: 5\n"
    problems = _problems(text)
    assert problems == [
        "nebari-config.yaml: security.authentication.config.client_id: Input should be a valid string (got 5)",
        "nebari-config.yaml: security.authentication.config.client_secret: required key is missing (got nothing)",
        "nebari-config.yaml: security.authentication.config.auth0_subdomain: required key is missing (got nothing)",
    ]


def test_certificate_defaults_to_self_signed_when_type_is_left_out() -> None:
    assert parse_config(MINIMAL + "certificate: {}\n", "c").certificate.type == "self-signed"


def test_provider_is_inferred_from_a_single_provider_section() -> None:
    config = parse_config(MINIMAL + "existing:\n  kube_context: prod\n", "c")
    assert config.provider == "existing"
    assert config.existing is not None and config.existing.kube_context == "prod"


def test_config_is_read_only() -> None:
    config = parse_config(MINIMAL, "c")
    with pytest.raises(ValueError, match="frozen"):
        config.project_name = "other"  # type: ignore[misc]
