"""What `doit destroy` leaves of the databases, says, and deletes with --delete-data.

Against the fake Kubernetes API (tests/kubefake.py): the claims a StatefulSet made stay
after their stage is destroyed (Kubernetes' default retention), unless asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from checkhelpers import ROOT, render_file
from kubefake import FakeKube
from sandboxproject import SandboxProject

from stagegraph.keptvolumes import after_destroy, stateful_claims
from stagegraph.project import Project
from stagegraph.records import RecordStore
from stagegraph.summary import RunSummary


def test_the_claims_of_every_rendered_statefulset_are_found() -> None:
    stages = render_file(ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml")
    found = {s.name: stateful_claims(s.files) for s in stages}
    assert found["05-kubernetes-keycloak"] == ["data-keycloak-postgresql-0"]
    assert found["07-kubernetes-services"] == ["data-conda-store-postgresql-0", "data-conda-store-redis-0"]
    assert found["04-kubernetes-ingress"] == []


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube() as server:
        server.add_namespace("dev")
        yield server


def claim(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "dev"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "8Gi"}}},
    }


@pytest.fixture
def project(fake: FakeKube, tmp_path: Path) -> Project:
    sandbox = SandboxProject.create(tmp_path / "p")
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    sandbox.edit_config(
        lambda c: (
            c.pop("sandbox", None),
            c.update(
                provider="existing", existing={"kube_context": "fake"}, terraform_state={"type": "local"}
            ),
            # Render needs a root password to refer to; the value is never in the render.
            c["security"].update(keycloak={"initial_root_password": "test-only"}),
        )
    )
    RecordStore(sandbox.state_dir).record_success(
        "02-infrastructure",
        fingerprint="f",
        inputs={},
        outputs={"kubeconfig_path": str(kubeconfig), "kube_context": "fake"},
        attempted_at=datetime.now(UTC),
    )
    sandbox.doit("render")
    for name in ("data-keycloak-postgresql-0", "data-conda-store-postgresql-0", "data-conda-store-redis-0"):
        fake.apply_as("statefulset-controller", claim(name))
    return Project.discover(sandbox.root)


def test_a_destroy_keeps_the_database_volumes_and_says_how_to_remove_them(
    fake: FakeKube, project: Project
) -> None:
    note = after_destroy(project, "07-kubernetes-services", delete_data=False)
    assert note is not None
    assert note.startswith(
        "07-kubernetes-services: kept volumes data-conda-store-postgresql-0, data-conda-store-redis-0 "
        "in namespace dev"
    )
    assert "`kubectl -n dev delete pvc data-conda-store-postgresql-0 data-conda-store-redis-0`" in note
    assert "--delete-data" in note and "a new deploy here mounts them again" in note
    assert fake.names("v1", "persistentvolumeclaims", "dev") == sorted(
        ["data-keycloak-postgresql-0", "data-conda-store-postgresql-0", "data-conda-store-redis-0"]
    )
    assert after_destroy(project, "04-kubernetes-ingress", delete_data=False) is None


def test_delete_data_deletes_the_stage_volumes_only(fake: FakeKube, project: Project) -> None:
    note = after_destroy(project, "05-kubernetes-keycloak", delete_data=True)
    assert note == "05-kubernetes-keycloak: deleted volumes data-keycloak-postgresql-0"
    assert fake.names("v1", "persistentvolumeclaims", "dev") == [
        "data-conda-store-postgresql-0",
        "data-conda-store-redis-0",
    ]
    # Run again (a resumed destroy): already gone is what was asked for.
    again = after_destroy(project, "05-kubernetes-keycloak", delete_data=True)
    assert again == "05-kubernetes-keycloak: deleted volumes (none were left)"


def test_the_sandbox_has_no_cluster_and_leaves_nothing(tmp_path: Path) -> None:
    sandbox = SandboxProject.create(tmp_path / "p")
    sandbox.doit("render")
    assert after_destroy(Project.discover(sandbox.root), "05-kubernetes-keycloak", delete_data=True) is None


def test_notes_are_in_the_run_summary_file(tmp_path: Path) -> None:
    summary = RunSummary("destroy")
    summary.add("05-kubernetes-keycloak", "destroyed", 1.0)
    summary.note("05-kubernetes-keycloak: kept volumes data-keycloak-postgresql-0 in namespace dev")
    import json

    written = json.loads(summary.write(tmp_path).read_text())
    assert written["notes"] == [
        "05-kubernetes-keycloak: kept volumes data-keycloak-postgresql-0 in namespace dev"
    ]


@pytest.mark.e2e
def test_doit_destroy_takes_delete_data_and_the_sandbox_leaves_no_note(tmp_path: Path) -> None:
    sandbox = SandboxProject.create(tmp_path / "p")
    sandbox.doit("deploy")
    out = sandbox.doit("destroy", "--delete-data").stdout
    assert "destroy: 10 destroyed" in out and "note:" not in out
