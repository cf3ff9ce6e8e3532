"""The deploy runs the upgrade's recorded actions at their stage, and records them (sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

from sandboxproject import SandboxProject

from stagegraph.upgrade import deploy_actions
from stagegraph.upgrade.model import DeployAction


def test_pending_action_makes_its_stage_apply_once_and_is_recorded(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    project.doit("deploy")
    deploy_actions.add(
        project.state_dir,
        [
            DeployAction(
                id="2023.4.2-argo-crds",
                step="2023.4.2",
                stage="07-kubernetes-services",
                when="before",
                kind="kubernetes-delete",
                description="delete the old Argo CRDs",
                objects=[
                    {
                        "api_version": "v1",
                        "plural": "serviceaccounts",
                        "namespace": "dev",
                        "name": "argo-admin",
                    }
                ],
            )
        ],
    )
    listed = project.doit("upgrade", "--list").stdout
    assert "2023.4.2-argo-crds: before 07-kubernetes-services, kubernetes-delete, pending" in listed
    out = project.doit("deploy").stdout
    # Nothing else changed: only the stage with the action runs, and says what became of it.
    assert project.applied_in_last_run() == {"07-kubernetes-services"}
    assert "upgrade action 2023.4.2-argo-crds: not applicable in the sandbox (recorded)" in out
    (action,) = json.loads((project.state_dir / "upgrade-actions.json").read_text())
    assert action["status"] == "not-applicable" and action["finished_at"]
    project.doit("deploy")
    assert project.applied_in_last_run() == set()
