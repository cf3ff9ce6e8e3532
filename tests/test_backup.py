"""`doit backup`: the CronJob rendering, and applying it to a cluster (the fake Kubernetes API).

Not run against a real cluster: the Keycloak export script, tar in the JupyterLab image,
the CronJob controller creating Jobs on schedule, and the volumes binding.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubefake import FakeKube
from sandboxproject import SandboxProject

from stagegraph.backup import Bucket, Database, Platform, job_now, render_backup
from stagegraph.records import RecordStore
from stagegraph.schema.tool import Backup


def platform(namespace: str = "prod", *, keycloak_on_postgres: bool = True) -> Platform:
    return Platform(
        namespace=namespace,
        keycloak_url="http://kc/auth",
        tools_image="img:1",
        postgres_image="pg:16",
        s3_image="aws:2",
        keycloak_database=Database("keycloak-postgresql", "keycloak", "keycloak") if keycloak_on_postgres else None,
        conda_store_database=Database("conda-store-postgresql", "conda-store", "conda-store"),
        artifacts=Bucket("conda-store-minio", 9000, "conda-store", "conda-store-minio-credentials", "us-east-1"),
    )


def cronjob(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == "CronJob"]
    return found


def test_backup_runs_keycloak_then_files_in_one_pod_on_schedule() -> None:
    objects = render_backup(Backup(schedule="30 2 * * 0", keep_days=7), platform("prod"))
    assert [o["kind"] for o in objects] == ["ServiceAccount", "PersistentVolumeClaim", "ConfigMap", "CronJob"]
    assert all(o["metadata"]["namespace"] == "prod" for o in objects)
    spec = cronjob(objects)["spec"]
    assert spec["schedule"] == "30 2 * * 0" and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == [
        "keycloak",
        "keycloak-database",
        "conda-store-database",
        "conda-store-artifacts",
        "conda-store",
        "shared-storage",
    ]
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
    assert claims["conda-store"] == "conda-store-prod-share"
    assert claims["shared-storage"] == "jupyterhub-prod-share"
    env = {e["name"]: e for e in pod["initContainers"][0]["env"]}
    # The Keycloak password comes from the cluster's secret, never from the render.
    assert env["KEYCLOAK_PASSWORD"] == {
        "name": "KEYCLOAK_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "keycloak-admin-credentials", "key": "password"}},
    }
    prune = pod["containers"][0]
    assert {"name": "KEEP_DAYS", "value": "7"} in prune["env"]
    # Every archive lands in a folder named after the Job.
    assert env["OUT"]["value"] == "/backup/$(RUN)/keycloak"
    assert (
        env["RUN"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/job-name']"
    )


def test_backup_components_can_be_chosen() -> None:
    objects = render_backup(Backup(components=["shared_storage"], storage_class="fast"), platform("dev"))
    pod = cronjob(objects)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["shared-storage"]
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == "fast"


def test_backup_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="schedule"):
        Backup(schedule="every day")
    with pytest.raises(ValueError, match="components"):
        Backup(components=["grafana"])  # type: ignore[list-item]


def test_job_now_copies_the_cronjob_template() -> None:
    cj = cronjob(render_backup(Backup(), platform("dev")))
    job = job_now(cj, "nebari-backup-manual-1")
    assert job["kind"] == "Job" and job["spec"] == cj["spec"]["jobTemplate"]["spec"]
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube() as server:
        server.add_namespace("dev")
        yield server


def test_doit_backup_applies_the_cronjob_and_starts_a_job(fake: FakeKube, tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    project.edit_config(
        lambda c: (
            c.pop("sandbox", None),
            # Local records (seeded below): `type: remote` on existing would keep them in the cluster.
            c.update(
                provider="existing", existing={"kube_context": "fake"}, terraform_state={"type": "local"}
            ),
        )
    )
    # What 02-infrastructure records after it applied against a cluster: where its kubeconfig is.
    RecordStore(project.state_dir).record_success(
        "02-infrastructure",
        fingerprint="f",
        inputs={},
        outputs={"kubeconfig_path": str(kubeconfig), "kube_context": "fake"},
        attempted_at=datetime.now(UTC),
    )
    out = project.doit("backup", "--now").stdout
    assert "wrote backup/backup.yaml (4 objects" in out
    assert "restore with `doit backup --restore nebari-backup-manual-" in out
    assert "CronJob dev/nebari-backup: created" in out
    cj = fake.get("batch/v1", "cronjobs", "dev", "nebari-backup")
    assert cj is not None and cj["spec"]["schedule"] == "0 3 * * *"
    assert fake.get("v1", "persistentvolumeclaims", "dev", "nebari-backups") is not None
    (job,) = fake.names("batch/v1", "jobs", "dev")
    assert job.startswith("nebari-backup-manual-")
    started = fake.get("batch/v1", "jobs", "dev", job)
    assert started is not None
    assert [c["name"] for c in started["spec"]["template"]["spec"]["initContainers"]] == [
        "keycloak",
        "keycloak-database",
        "conda-store-database",
        "conda-store-artifacts",
        "conda-store",
        "shared-storage",
    ]
    rendered = list(yaml.safe_load_all((project.root / "backup" / "backup.yaml").read_text()))
    assert [o["kind"] for o in rendered if o] == [
        "ServiceAccount",
        "PersistentVolumeClaim",
        "ConfigMap",
        "CronJob",
    ]
    again = project.doit("backup").stdout
    assert "unchanged: backup/backup.yaml" in again and "CronJob dev/nebari-backup: unchanged" in again


def test_sandbox_backup_renders_without_applying(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    out = project.doit("backup").stdout
    assert "sandbox: not applied" in out
    assert (project.root / "backup" / "backup.yaml").is_file()
