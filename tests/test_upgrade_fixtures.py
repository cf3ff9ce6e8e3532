"""Configs written by historical Nebari releases upgrade, validate and render (`doit upgrade`).

The fixtures in tests/fixtures/upgrade/ were written by `nebari init` of those releases in
scratch environments (each file's header says how), except the QHub 0.3.14 one, written by
hand because qhub 0.3.x does not install on Python 3.11.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from sandboxproject import ROOT, SandboxProject

from stagegraph.configfile import load_config, parse_config
from stagegraph.errors import ConfigError
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.stages.builtin import BUILTIN_STAGES
from stagegraph.upgrade.run import upgrade_file
from stagegraph.upgrade.versions import CURRENT

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "upgrade").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _age_key_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The QHub upgrade generates an encrypted root password: its age key stays in the test folder.
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "age" / "keys.txt"))


def test_fixtures_span_several_releases() -> None:
    versions = {p.name.split("-")[1] for p in FIXTURES}
    assert {"0.3.14", "2022.11.1", "2023.7.2", "2023.10.1", "2024.6.1", "2025.2.1"} <= versions


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_old_config_is_refused_with_one_line_naming_the_upgrade(fixture: Path, tmp_path: Path) -> None:
    config = tmp_path / "nebari-config.yaml"
    shutil.copy(fixture, config)
    with pytest.raises(ConfigError) as err:
        load_config(config, "nebari-config.yaml")
    assert len(err.value.problems) == 1
    assert "run `doit upgrade`" in err.value.problems[0]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_historical_config_upgrades_validates_and_renders(fixture: Path, tmp_path: Path) -> None:
    config = tmp_path / "nebari-config.yaml"
    shutil.copy(fixture, config)
    old = fixture.read_bytes()
    old_version = yaml.safe_load(old).get("nebari_version") or yaml.safe_load(old)["qhub_version"]
    result = upgrade_file(config, {})
    # The backup is the old file, byte for byte, named after the old version.
    assert result.backup == tmp_path / f"nebari-config.yaml.{old_version}.backup"
    assert result.backup.read_bytes() == old
    assert result.start == str(old_version) and result.finish == CURRENT
    # Comments survive (each fixture starts with a header comment).
    assert config.read_text().startswith(old.decode().split("\n", 1)[0])
    assert f"+nebari_version: {CURRENT}" in result.diff
    upgraded = load_config(config, "nebari-config.yaml")
    assert upgraded.nebari_version == CURRENT
    assert upgraded.project_name == yaml.safe_load(old)["project_name"]
    lock = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
    for stage in BUILTIN_STAGES:
        rendered = render_stage(stage, upgraded, lock, "lockfiles/versions.yaml")
        assert rendered.files, stage.name


def test_untouched_sections_keep_their_exact_text(tmp_path: Path) -> None:
    fixture = next(p for p in FIXTURES if p.name == "nebari-2024.6.1-local.yaml")
    config = tmp_path / "nebari-config.yaml"
    shutil.copy(fixture, config)
    result = upgrade_file(config, {})
    old_lines = fixture.read_text().splitlines()
    new_lines = config.read_text().splitlines()
    # Only the version line differs: the theme's folded welcome text is not re-wrapped.
    assert [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b] == [
        ("nebari_version: 2024.6.1", f"nebari_version: {CURRENT}")
    ]
    assert result.diff.count("\n-") == 1


def test_qhub_config_users_become_a_keycloak_import(tmp_path: Path) -> None:
    config = tmp_path / "nebari-config.yaml"
    shutil.copy(next(p for p in FIXTURES if p.name.startswith("qhub-")), config)
    result = upgrade_file(config, {})
    assert result.files == [tmp_path / "nebari-users-import.json"]
    data = yaml.safe_load(config.read_text())
    assert "qhub_version" not in data and data["prevent_deploy"] is True
    assert "$2b$" not in config.read_text()  # the users (and their password hashes) left the config
    # The root password Nebari would write in plain text is an encrypted reference.
    assert data["security"]["keycloak"]["initial_root_password"] == {
        "sops": "secrets/keycloak.enc.yaml",
        "key": "keycloak.root_password",
    }
    assert (tmp_path / "secrets" / "keycloak.enc.yaml").read_text().count("ENC[") >= 1
    # Nothing would deploy until someone removes prevent_deploy on purpose.
    assert parse_config(config.read_text(), "nebari-config.yaml").prevent_deploy is True


def test_newer_config_is_refused_too() -> None:
    with pytest.raises(
        ConfigError, match=r"nebari_version: 2099.1.1 is newer than .*install a newer stagegraph"
    ):
        parse_config("project_name: demo\nnebari_version: 2099.1.1\n", "nebari-config.yaml")


def test_current_config_is_left_alone(tmp_path: Path) -> None:
    config = tmp_path / "nebari-config.yaml"
    config.write_text(f"project_name: demo\nnebari_version: {CURRENT}\n")
    result = upgrade_file(config, {})
    assert result.steps == [] and result.backup is None
    assert not list(tmp_path.glob("*.backup"))


def test_doit_upgrade_prints_the_diff_and_records_actions(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    fixture = next(p for p in FIXTURES if p.name == "nebari-2023.10.1-local.yaml")
    shutil.copy(fixture, project.root / "nebari-config.yaml")
    refused = project.doit("validate", check=False)
    assert refused.returncode != 0
    assert "nebari_version: 2023.10.1 is older than" in refused.stdout + refused.stderr
    out = project.doit("upgrade", "--decide", "shared-directory-roles:no").stdout
    assert f"+nebari_version: {CURRENT}" in out
    assert "the old file is nebari-config.yaml.2023.10.1.backup" in out
    assert "2024.6.1-node-exporter" in out
    assert (project.root / "nebari-config.yaml.2023.10.1.backup").read_bytes() == fixture.read_bytes()
    assert project.doit("validate").returncode == 0
    listed = project.doit("upgrade", "--list").stdout
    assert "2025.10.1-bitnami-keycloak: before 05-kubernetes-keycloak, manual, pending" in listed
    again = project.doit("upgrade").stdout
    assert "nothing to upgrade" in again
    assert os.stat(project.root / "nebari-config.yaml.2023.10.1.backup").st_mode & 0o777 == (
        os.stat(fixture).st_mode & 0o777
    )
