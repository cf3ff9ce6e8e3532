"""Offline rehearsal of cloud configs (`stagegraph.rehearse: true`) through real Terraform.

Same graph, same stages, same typed outputs as a real aws/gcp/azure deploy, with every
cloud- or cluster-facing resource as its terraform_data twin and local state. What is
checked is what a user checks: which stages applied, that a second deploy is a no-op, that
a one-value change re-applies exactly the stages that read it, and that nothing of the
rehearsal lands where a real deploy of the same config would look.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandboxproject import BUILTIN_STAGE_NAMES, SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIXTURES = Path(__file__).parent / "fixtures" / "configs"


def _password_auth(config: dict[str, Any]) -> None:
    # The fixture's SOPS reference needs a key this test does not have; auth is not under test.
    config["security"]["authentication"] = {"type": "password"}


def _bump_user_max(section: str) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        config[section]["node_groups"]["user"]["max_nodes"] += 1

    return change


CASES = {
    "aws": ("aws-typical.happy.yaml", "amazon_web_services", None),
    "gcp": ("gcp.happy.yaml", "google_cloud_platform", None),
    "azure": ("azure.happy.yaml", "azure", _password_auth),
}


def _rehearsal(where: Path, fixture: str, prepare: Callable[[dict[str, Any]], None] | None) -> SandboxProject:
    project = SandboxProject.create(where)
    shutil.copy(FIXTURES / fixture, project.root / "nebari-config.yaml")

    def rehearse(config: dict[str, Any]) -> None:
        config.setdefault("stagegraph", {})["rehearse"] = True
        if prepare:
            prepare(config)

    project.edit_config(rehearse)
    return project


@pytest.mark.parametrize("cloud", sorted(CASES))
def test_rehearsal_deploys_redeploys_as_noop_and_reapplies_what_a_change_reaches(
    cloud: str, tmp_path: Path
) -> None:
    fixture, section, prepare = CASES[cloud]
    project = _rehearsal(tmp_path, fixture, prepare)
    project.doit("validate")
    project.doit("deploy")
    assert project.applied_in_last_run() == set(BUILTIN_STAGE_NAMES)
    rehearsal = project.root / "stages-rehearsal"
    # The cloud's own stage directories, rendered with twins and no backend block.
    infra = rehearsal / "02-infrastructure" / cloud / "main.tf.json"
    doc = json.loads(infra.read_text())
    assert set(doc["resource"]) == {"terraform_data"}
    assert not list(rehearsal.rglob("backend.tf.json"))
    # Typed outputs of 02 as later stages read them: a connection and a selector per group.
    record = json.loads((project.state_dir / "rehearsal" / "records" / "02-infrastructure.json").read_text())
    outputs = record["outputs"]
    groups = set(yaml.safe_load((project.root / "nebari-config.yaml").read_text())[section]["node_groups"])
    assert set(outputs["node_selectors"]) == groups
    assert outputs["cluster"]["endpoint"].startswith("https://")
    # The registry's twin: its address is a typed output as on the cloud.
    assert {"aws": ".amazonaws.com/", "gcp": "-docker.pkg.dev/", "azure": ".azurecr.io"}[cloud] in (
        outputs["container_registry"]
    )
    # Nothing under the real deployment's folders.
    assert not (project.root / "stages").exists()
    assert not (project.state_dir / "records").exists()

    project.doit("deploy")
    assert project.applied_in_last_run() == set()

    project.edit_config(_bump_user_max(section))
    project.doit("deploy")
    # Only 02 reads node group sizes into Terraform; its outputs do not change.
    assert project.applied_in_last_run() == {"02-infrastructure"}


def test_rehearsal_of_a_dns_change_reaches_ingress_only(tmp_path: Path) -> None:
    project = _rehearsal(tmp_path, "aws-existing-network-gpu.happy.yaml", None)
    project.doit("deploy")
    project.edit_config(lambda c: c["dns"].update(auto_provision=False))
    project.doit("deploy")
    assert project.applied_in_last_run() == {"04-kubernetes-ingress"}


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_new_user_inits_validates_renders_and_rehearses_a_cloud(cloud: str, tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    project.extra_env["SOPS_AGE_KEY_FILE"] = str(tmp_path / "age" / "keys.txt")
    (project.root / "nebari-config.yaml").unlink()
    extra = ["--gcp-project", "team-project-42"] if cloud == "gcp" else []
    project.doit(
        "init", "--provider", cloud, "--project-name", "team", "--domain", "team.example.com", *extra
    )
    valid = project.doit("validate").stdout
    assert f"valid (provider {cloud}, 10 stages" in valid
    project.doit("render")
    backends = sorted(p.parent.name for p in (project.root / "stages").rglob("backend.tf.json"))
    assert backends and "01-terraform-state" not in backends
    project.edit_config(lambda c: c.setdefault("stagegraph", {}).update(rehearse=True))
    project.doit("deploy")
    assert project.applied_in_last_run() == set(BUILTIN_STAGE_NAMES)


def test_validate_refuses_a_kubernetes_version_newer_than_the_lockfile(tmp_path: Path) -> None:
    project = _rehearsal(tmp_path, "aws-typical.happy.yaml", None)
    project.edit_config(lambda c: c["amazon_web_services"].update(kubernetes_version="1.99"))
    proc = project.doit("validate", check=False)
    assert proc.returncode != 0
    assert (
        "nebari-config.yaml: amazon_web_services.kubernetes_version: newer than lockfiles/versions.yaml "
        "kubernetes.max_version 1.31" in proc.stdout + proc.stderr
    )
