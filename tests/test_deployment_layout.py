"""Where a config's files go: its folder, `<env>/` for an environment, never anywhere else."""

from __future__ import annotations

from pathlib import Path

import pytest
from sandboxproject import SandboxProject

from stagegraph.deployment import DeploymentError, Layout, environment_of, environments
from stagegraph.errors import ConfigError
from stagegraph.project import Project


def test_environment_comes_from_the_config_name(tmp_path: Path) -> None:
    assert environment_of(tmp_path / "nebari-config.yaml") == ""
    assert environment_of(tmp_path / "nebari-config.dev.yaml") == "dev"
    assert environment_of(tmp_path / "other.yaml") == ""
    with pytest.raises(DeploymentError, match=r"environment 'Dev Box' is not a plain name"):
        environment_of(tmp_path / "nebari-config.Dev Box.yaml")
    with pytest.raises(DeploymentError, match=r"would clash with the folder's own stages/"):
        environment_of(tmp_path / "nebari-config.stages.yaml")


def test_homes_state_and_renders(tmp_path: Path) -> None:
    default = Layout.of(tmp_path / "nebari-config.yaml")
    dev = Layout.of(tmp_path / "nebari-config.dev.yaml")
    assert default.home == tmp_path and default.state_dir == tmp_path / ".stagegraph"
    assert dev.home == tmp_path / "dev" and dev.state_dir == tmp_path / "dev" / ".stagegraph"
    assert dev.output_root("stages") == tmp_path / "dev" / "stages"
    assert default.output_root("out/render") == tmp_path / "out" / "render"


@pytest.mark.parametrize("bad", ["/etc", "../other/stages", "a/../../b", ".", ".stagegraph/x"])
def test_output_directory_cannot_leave_the_deployment_folder(bad: str) -> None:
    from stagegraph.configfile import parse_config

    with pytest.raises(
        ConfigError, match=r"nebari-config.yaml: stagegraph.output_directory: must be a folder inside"
    ):
        parse_config(f"project_name: demo\nstagegraph:\n  output_directory: '{bad}'\n", "nebari-config.yaml")


def test_environments_of_a_folder_in_order(tmp_path: Path) -> None:
    for name in ("nebari-config.prod.yaml", "nebari-config.yaml", "nebari-config.dev.yaml", "notes.yaml"):
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "nebari-config.Bad Name.yaml").write_text("{}\n")
    assert [e for e, _ in environments(tmp_path)] == ["", "dev", "prod"]


def test_project_resolves_everything_against_the_config_folder(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    p = Project.discover(tmp_path, str(other / "nebari-config.yaml"), env={})
    assert p.root == other and p.home == other and p.state_dir == other / ".stagegraph"
    assert p.config_name == "elsewhere/nebari-config.yaml"  # as typed, relative to dodo.py
    e = Project.discover(tmp_path, None, env={}, environment="dev")
    assert e.config_path == tmp_path / "nebari-config.dev.yaml" and e.home == tmp_path / "dev"
    with pytest.raises(
        ConfigError, match=r"env=prod and config=nebari-config.dev.yaml name different environments"
    ):
        Project.discover(tmp_path, "nebari-config.dev.yaml", env={}, environment="prod")


def test_a_bad_env_fails_actions_in_one_line_but_list_works(tmp_path: Path) -> None:
    p = SandboxProject.create(tmp_path / "p")
    assert "04-kubernetes-ingress" in p.doit("env=Bad!", "list").stdout
    proc = p.doit("env=Bad!", "validate", check=False)
    assert proc.returncode != 0
    assert proc.stdout.strip() == (
        "error: env=Bad!: environment 'Bad!' is not a plain name; use lower-case letters, digits, "
        "'-' and '_' (at most 40, e.g. dev or prod)"
    )
    assert not (p.root / "Bad!").exists()


def test_init_with_another_config_writes_its_secrets_there(tmp_path: Path) -> None:
    """The issue's case: `doit config=/tmp/new/nebari-config.yaml init` changed this repository's secrets/."""
    p = SandboxProject.create(tmp_path / "p")
    p.extra_env["SOPS_AGE_KEY_FILE"] = str(tmp_path / "age" / "keys.txt")
    new = tmp_path / "new"
    new.mkdir()
    p.doit(f"config={new / 'nebari-config.yaml'}", "init")
    assert (new / "secrets" / "keycloak.enc.yaml").exists() and (new / "secrets" / ".sops.yaml").exists()
    assert not (p.root / "secrets").exists()
    assert not (p.root / ".stagegraph" / "identity.json").exists()
