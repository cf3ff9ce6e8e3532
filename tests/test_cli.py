"""The commands as a user types them: `python -m doit <task>` in a project folder."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sandboxproject import SandboxProject


@pytest.fixture
def project(tmp_path: Path) -> SandboxProject:
    return SandboxProject.create(tmp_path / "p")


def test_validate_ok(project: SandboxProject) -> None:
    out = project.doit("validate").stdout
    assert re.search(
        r"nebari-config.yaml: valid \(provider sandbox, 10 stages, \d+ pins in lockfiles/versions.yaml\)", out
    )


def test_validate_bad_value_one_line_and_exit_code(project: SandboxProject) -> None:
    project.edit_config(lambda c: c["security"].setdefault("keycloak", {}).update(realm_display_name=3))
    proc = project.doit("validate", check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stdout.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: nebari-config.yaml: security.keycloak.realm_display_name: Input should be a valid string (got 3)"
    ]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_unknown_key_did_you_mean_and_list_still_works(project: SandboxProject) -> None:
    project.edit_config(lambda c: c.update(namepsace="dev"))
    proc = project.doit("validate", check=False)
    assert proc.returncode != 0
    assert "nebari-config.yaml: namepsace: unknown key; did you mean 'namespace'?" in proc.stdout
    # A broken config must not break `doit list`: the stages are still shown.
    assert "04-kubernetes-ingress" in project.doit("list").stdout
    # ...but nothing is rendered or applied from it.
    proc = project.doit("deploy", check=False)
    assert proc.returncode != 0 and not (project.root / "stages").exists()


def test_other_config_by_variable_and_environment(project: SandboxProject) -> None:
    (project.root / "other.yaml").write_text(
        (project.root / "nebari-config.yaml").read_text().replace("demo", "other")
    )
    (project.root / "nebari-config.yaml").unlink()
    assert "other.yaml: valid" in project.doit("config=other.yaml", "validate").stdout
    proc = project.doit("validate", check=False)
    assert proc.returncode != 0 and "nebari-config.yaml" in proc.stdout


def test_init_writes_a_commented_config_and_refuses_to_overwrite(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    # init makes an age key when there is none: keep it in the test's folder, not in $HOME.
    key_file = tmp_path / "age" / "keys.txt"
    project.extra_env["SOPS_AGE_KEY_FILE"] = str(key_file)
    (project.root / "nebari-config.yaml").unlink()
    proc = project.doit(
        "init", "--provider", "local", "--project-name", "team", "--domain", "team.example.com"
    )
    assert key_file.exists() and key_file.stat().st_mode & 0o077 == 0
    assert (project.root / "secrets" / "keycloak.enc.yaml").exists()
    text = (project.root / "nebari-config.yaml").read_text()
    assert "provider: local" in text and "project_name: team" in text
    assert "#" in text and "05-kubernetes-keycloak" in text  # sections headed by their stage
    assert project.doit("validate").returncode == 0
    password = re.search(r"initial_root_password: (\S+)", text)
    if password:  # a plaintext password (no SOPS key yet) must never be printed
        assert password.group(1) not in proc.stdout + proc.stderr
    again = project.doit("init", check=False)
    assert again.returncode != 0 and "nebari-config.yaml" in again.stdout and "exists" in again.stdout


def test_init_with_a_bad_choice_writes_nothing(tmp_path: Path) -> None:
    # The config is checked before any key, rule or secret is made.
    project = SandboxProject.create(tmp_path / "p")
    key_file = tmp_path / "age" / "keys.txt"
    project.extra_env["SOPS_AGE_KEY_FILE"] = str(key_file)
    (project.root / "nebari-config.yaml").unlink()
    shutil.rmtree(project.root / "secrets", ignore_errors=True)
    proc = project.doit("init", "--provider", "aws", "--project-name", "MyProj", check=False)
    assert proc.returncode != 0
    assert "project_name: the ECR repository name 'MyProj-dev-jupyterlab' is not allowed" in proc.stdout
    assert not (project.root / "nebari-config.yaml").exists()
    assert not (project.root / "secrets").exists() and not key_file.exists()


def test_graph_lists_dependencies_and_writes_svg(project: SandboxProject) -> None:
    proc = project.doit("graph", "--svg", "graph.svg")
    assert "helm_charts.traefik" in proc.stdout and "02-infrastructure" in proc.stdout
    svg = ET.parse(project.root / "graph.svg").getroot()
    assert svg.tag.endswith("svg")


def test_render_writes_nebari_layout(project: SandboxProject) -> None:
    project.doit("render")
    rendered = project.root / "stages"
    assert (rendered / "01-terraform-state" / "sandbox" / "main.tf.json").exists()
    assert (rendered / "02-infrastructure" / "sandbox" / "main.tf.json").exists()
    assert (rendered / "04-kubernetes-ingress" / "main.tf.json").exists()
    second = project.doit("render").stdout
    assert "stages" not in second  # nothing changed: every render task up to date
