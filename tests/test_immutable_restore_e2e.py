"""Immutable fields refused before any Terraform runs; a restore after a bad apply (sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

from sandboxproject import SandboxProject

EXT = "08-nebari-tf-extensions"


def log_times(project: SandboxProject) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in (project.state_dir / "logs").glob("*.log")}


def test_immutable_field_change_is_refused_before_terraform_then_allowed(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    project.doit("deploy")
    records = {p.name: p.read_bytes() for p in (project.state_dir / "records").glob("*.json")}
    logs = log_times(project)
    assert json.loads(records["01-terraform-state.json"])["immutable"]["project_name"] == "demo"

    # project_name and provider are also guarded by the folder identity (stagegraph.identity);
    # namespace is guarded by the immutable table alone.
    project.edit_config(lambda c: c.update(namespace="other"))
    refused = project.doit("deploy", check=False)
    assert refused.returncode != 0
    out = refused.stdout + refused.stderr
    assert "nebari-config.yaml: namespace: changed from 'dev'" in out
    assert "doit deploy --allow-change namespace" in out
    # Nothing applied: no Terraform log written, no record touched.
    assert log_times(project) == logs
    assert {p.name: p.read_bytes() for p in (project.state_dir / "records").glob("*.json")} == records
    assert project.statuses().get("preflight") == "failed", project.last_run()
    assert set(project.statuses().values()) == {"failed", "not-run"}

    wrong = project.doit("deploy", "--allow-change", "provider", check=False)
    assert wrong.returncode != 0 and "namespace: changed from 'dev'" in wrong.stdout + wrong.stderr
    unknown = project.doit("deploy", "--allow-change", "domain", check=False)
    assert "--allow-change domain: not a field that needs it" in unknown.stdout + unknown.stderr

    allowed = project.doit("deploy", "--allow-change", "namespace")
    assert "namespace: 'dev' -> 'other' (allowed by --allow-change)" in allowed.stdout
    assert project.applied_in_last_run()  # it went ahead
    assert (
        json.loads((project.state_dir / "records" / "03-kubernetes-initialize.json").read_text())[
            "immutable"
        ]["namespace"]
        == "other"
    )
    assert project.doit("deploy").returncode == 0  # the flag was needed once

    project.edit_config(lambda c: c.update(prevent_deploy=True))
    stopped = project.doit("deploy", check=False)
    assert stopped.returncode != 0
    assert "nebari-config.yaml: prevent_deploy: true" in stopped.stdout + stopped.stderr


def test_project_rename_is_refused_until_allowed_by_name(tmp_path: Path) -> None:
    """project_name is guarded twice (folder identity, immutable table); one flag passes both."""
    project = SandboxProject.create(tmp_path / "p")
    project.doit("deploy")
    logs = log_times(project)
    project.edit_config(lambda c: c.update(project_name="renamed"))
    refused = project.doit("deploy", check=False)
    assert refused.returncode != 0
    assert "project_name 'renamed' does not match the deployment" in refused.stdout + refused.stderr
    assert log_times(project) == logs  # no Terraform ran

    allowed = project.doit("deploy", "--allow-change", "project_name")
    assert "project_name: 'demo' -> 'renamed' (allowed by --allow-change)" in allowed.stdout
    assert project.applied_in_last_run()
    identity = json.loads((project.state_dir / "identity.json").read_text())
    assert identity["project_name"] == "renamed"
    assert project.doit("deploy").returncode == 0  # the new name is this folder's now


def test_restore_after_a_bad_apply_returns_state_and_record(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    project.edit_config(lambda c: c.setdefault("stagegraph", {}).update(snapshots={"keep": 2}))
    project.doit("deploy")
    stage_dir = project.root / "stages" / EXT
    state_before = (stage_dir / "terraform.tfstate").read_bytes()
    record_before = json.loads((project.state_dir / "records" / f"{EXT}.json").read_text())

    # A bad apply: a resource whose provisioner fails, applied from the files on disk.
    main = stage_dir / "main.tf.json"
    doc = json.loads(main.read_text())
    doc.setdefault("resource", {}).setdefault("terraform_data", {})["broken"] = {
        "input": "x",
        "provisioner": [{"local-exec": {"command": "exit 3"}}],
    }
    main.write_text(json.dumps(doc))
    failed = project.doit("deploy", "--disable-render", check=False)
    assert failed.returncode != 0
    assert json.loads((project.state_dir / "records" / f"{EXT}.json").read_text())["status"] == "failed"
    assert (stage_dir / "terraform.tfstate").read_bytes() != state_before  # the broken resource is in it

    listed = project.doit("snapshots").stdout
    assert f"{EXT}  " in listed
    restored = project.doit("restore", EXT)
    assert f"{EXT}: state and record restored to snapshot" in restored.stdout
    assert (stage_dir / "terraform.tfstate").read_bytes() == state_before
    assert json.loads((project.state_dir / "records" / f"{EXT}.json").read_text()) == record_before
    assert oct((stage_dir / "terraform.tfstate").stat().st_mode & 0o777) == "0o600"

    # The restore itself was snapshotted, and only `keep` (+1 for that undo) are kept.
    snaps = sorted((project.state_dir / "snapshots" / EXT).iterdir())
    assert len(snaps) <= 3
    bad = project.doit("restore", "--snapshot", "nope", EXT, check=False)
    assert "has no snapshot 'nope'" in bad.stdout + bad.stderr

    # The next deploy re-renders the stage and applies it cleanly from the restored state.
    project.doit("deploy")
    assert json.loads((project.state_dir / "records" / f"{EXT}.json").read_text())["status"] == "applied"
