"""A deployment is a folder: two folders and two environments of one folder, on the sandbox.

What a platform team with a dev and a prod config would check: each config renders into
its own `stages/`, keeps its own state and records, deploys at the same time as the others,
and a change to one re-applies only its own stages (the others' Terraform state serials and
records stay byte for byte the same). A config that does not match the deployment recorded
in a folder is refused in one line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandboxproject import BUILTIN_STAGE_NAMES, ROOT, SandboxProject, git

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _write_env(project: SandboxProject, env: str, change: Any) -> Path:
    data = project.config()
    change(data)
    path = project.root / f"nebari-config.{env}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _snapshot(home: Path) -> dict[str, Any]:
    """Every Terraform state serial and every record file under a deployment home."""
    serials = {
        str(p.relative_to(home)): json.loads(p.read_text())["serial"]
        for p in sorted((home / "stages").rglob("terraform.tfstate"))
    }
    records = {p.name: p.read_bytes() for p in sorted((home / ".stagegraph" / "records").glob("*.json"))}
    return {"serials": serials, "records": records}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[SandboxProject, Path]:
    """Folder `a` with its default config and environment `dev`, and folder `b` (another
    project) deployed from a's dodo.py with config=; dev and default deploy concurrently."""
    base = tmp_path_factory.mktemp("folders")
    a = SandboxProject.create(base / "a")
    _write_env(a, "dev", lambda c: c.update(namespace="staging", project_name="demo"))
    b = base / "b"
    b.mkdir()
    (b / "nebari-config.yaml").write_text(
        (a.root / "nebari-config.yaml").read_text().replace("demo", "other")
    )
    # This repository's own .gitignore: a deploy of it, or of an environment, leaves git clean.
    shutil.copy(ROOT / ".gitignore", a.root / ".gitignore")
    git(a.root, "init", "-q", ".")
    git(a.root, "add", "-A")
    git(a.root, "commit", "-qm", "configs")
    first = a.popen("deploy")
    second = a.popen("env=dev", "deploy")
    out_first, _ = first.communicate(timeout=900)
    out_second, _ = second.communicate(timeout=900)
    assert first.returncode == 0, out_first
    assert second.returncode == 0, out_second
    assert "lock" not in out_first + out_second  # neither waited for nor was refused by the other
    a.doit(f"config={b / 'nebari-config.yaml'}", "deploy")
    return a, b


def test_each_config_owns_its_folder(folders: tuple[SandboxProject, Path]) -> None:
    a, b = folders
    homes = {"default": a.root, "dev": a.root / "dev", "other": b}
    for home in homes.values():
        records = {p.stem for p in (home / ".stagegraph" / "records").glob("*.json")}
        assert records == set(BUILTIN_STAGE_NAMES), home
        assert (home / "stages" / "04-kubernetes-ingress" / "terraform.tfstate").exists()
        assert (home / ".stagegraph" / "doit-db.json").exists()
        identity = json.loads((home / ".stagegraph" / "identity.json").read_text())
        assert identity["provider"] == "sandbox"
    assert json.loads((a.root / "dev" / ".stagegraph" / "identity.json").read_text())["environment"] == "dev"
    assert json.loads((b / ".stagegraph" / "identity.json").read_text())["project_name"] == "other"
    # The environment really deployed its own values, into its own state.
    ns = json.loads(
        (a.root / "dev" / ".stagegraph" / "records" / "03-kubernetes-initialize.json").read_text()
    )
    assert ns["outputs"]["namespace"] == "staging"
    # b's deploy wrote nothing of its own into a (a's files stayed a's).
    assert not (a.root / "other").exists() and not list(a.root.glob("*.tfstate"))
    # Deploying this repository's own config and an environment leaves its git tree clean.
    assert git(a.root, "status", "--porcelain") == ""


def test_a_change_to_one_environment_reapplies_only_its_own_stages(
    folders: tuple[SandboxProject, Path],
) -> None:
    a, b = folders
    before = {"default": _snapshot(a.root), "b": _snapshot(b)}
    dev_before = _snapshot(a.root / "dev")
    path = a.root / "nebari-config.dev.yaml"
    data = yaml.safe_load(path.read_text())
    data["theme"]["jupyterhub"]["hub_title"] = "Dev title"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = a.doit("env=dev", "deploy").stdout
    assert "1 applied" in out
    summary = json.loads((a.root / "dev" / ".stagegraph" / "last-run.json").read_text())
    assert {s["stage"] for s in summary["stages"] if s["status"] == "applied"} == {"07-kubernetes-services"}
    dev_after = _snapshot(a.root / "dev")
    changed = {k for k in dev_after["serials"] if dev_after["serials"][k] != dev_before["serials"][k]}
    assert changed == {"stages/07-kubernetes-services/terraform.tfstate"}
    assert {"default": _snapshot(a.root), "b": _snapshot(b)} == before
    # The other deployments see nothing to do.
    assert "10 skipped" in a.doit("deploy").stdout
    assert "10 skipped" in a.doit(f"config={b / 'nebari-config.yaml'}", "deploy").stdout


def test_status_all_shows_every_environment_side_by_side(folders: tuple[SandboxProject, Path]) -> None:
    a, _ = folders
    lines = a.doit("status", "--all").stdout.splitlines()
    assert lines[0].split() == ["stage", "default", "dev"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert list(rows) == BUILTIN_STAGE_NAMES
    assert all(states == ["applied", "applied"] for states in rows.values())


def test_a_config_of_another_project_is_refused_in_one_line(folders: tuple[SandboxProject, Path]) -> None:
    a, _ = folders
    path = a.root / "nebari-config.dev.yaml"
    original = path.read_text()
    path.write_text(original.replace("project_name: demo", "project_name: imposter"))
    try:
        before = _snapshot(a.root / "dev")
        proc = a.doit("env=dev", "deploy", check=False)
        errors = [line for line in proc.stdout.splitlines() if line.startswith("error:")]
        assert proc.returncode != 0 and len(errors) == 1
        assert "nebari-config.dev.yaml: project_name 'imposter' does not match the deployment" in errors[0]
        assert "project 'demo'" in errors[0] and "give this config a folder of its own" in errors[0]
        assert _snapshot(a.root / "dev") == before
        assert a.doit("env=dev", "status", check=False).returncode != 0
    finally:
        path.write_text(original)


def test_an_environment_folder_copied_under_another_name_is_refused(
    folders: tuple[SandboxProject, Path],
) -> None:
    a, _ = folders
    shutil.copytree(a.root / "dev", a.root / "qa", symlinks=True)
    shutil.copy(a.root / "nebari-config.dev.yaml", a.root / "nebari-config.qa.yaml")
    try:
        proc = a.doit("env=qa", "render", check=False)
        assert proc.returncode != 0
        assert "environment 'qa' does not match the deployment" in proc.stdout
    finally:
        shutil.rmtree(a.root / "qa")
        (a.root / "nebari-config.qa.yaml").unlink()


def test_switching_provider_is_refused_while_the_old_one_is_applied(tmp_path: Path) -> None:
    p = SandboxProject.create(tmp_path / "p")
    p.doit("01-terraform-state")
    sandbox = p.config()["sandbox"]

    def to_local(c: dict[str, Any]) -> None:
        c.update(provider="local")
        c.pop("sandbox")

    p.edit_config(to_local)
    proc = p.doit("render", check=False)
    assert proc.returncode != 0
    assert (
        "provider local: stages of provider sandbox are still applied" in proc.stdout
        and "01-terraform-state" in proc.stdout
        and "doit destroy" in proc.stdout
    )
    p.edit_config(lambda c: c.update(provider="sandbox", sandbox=sandbox))
    p.doit("destroy")
    p.edit_config(to_local)
    p.doit("render:01-terraform-state")
    assert (p.root / "stages" / "01-terraform-state" / "local" / "main.tf.json").exists()
    assert json.loads((p.state_dir / "identity.json").read_text())["provider"] == "local"
