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
from stagegraph.errors import StagegraphError
from stagegraph.records import RecordStore
from stagegraph.schema.tool import Backup


def platform(namespace: str = "prod", *, keycloak_on_postgres: bool = True) -> Platform:
    return Platform(
        namespace=namespace,
        keycloak_url="http://kc/auth",
        tools_image="img:1",
        postgres_image="pg:16",
        s3_image="aws:2",
        keycloak_database=Database("keycloak-postgresql", "keycloak", "keycloak")
        if keycloak_on_postgres
        else None,
        conda_store_database=Database("conda-store-postgresql", "conda-store", "conda-store"),
        artifacts=Bucket(
            "conda-store-minio", 9000, "conda-store", "conda-store-minio-credentials", "us-east-1"
        ),
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


def test_the_backup_follows_the_databases_the_cluster_runs_not_the_next_ones() -> None:
    from checkhelpers import LOCK

    from stagegraph.backup import platform_of
    from stagegraph.configfile import parse_config

    config = parse_config("project_name: demo\nprovider: existing\n", "nebari-config.yaml")
    fresh = platform_of(config, LOCK, "versions.yaml")
    assert fresh.keycloak_database is not None and fresh.conda_store_database is not None
    assert fresh.postgres_image == LOCK.pin("images.postgres").ref  # type: ignore[attr-defined]
    assert fresh.s3_image == LOCK.pin("images.aws_cli").ref  # type: ignore[attr-defined]
    # A dev-file Keycloak and a SQLite conda-store whose switch the deploy refused: the
    # config names PostgreSQL already, but there is none to dump yet.
    old = platform_of(
        config,
        LOCK,
        "versions.yaml",
        applied={"security.keycloak.database": "dev-file", "conda_store.database": "sqlite"},
    )
    pod = cronjob(render_backup(Backup(), old))["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["keycloak", "conda-store", "shared-storage"]


def test_the_restore_job_and_its_steps_are_rendered_for_the_named_backup() -> None:
    from stagegraph.backup_restore import render_restore, restore_steps

    objects = render_restore(Backup(), platform("prod"), "nebari-backup-manual-1")
    job = next(o for o in objects if o["kind"] == "Job")
    assert job["metadata"]["name"] == "nebari-restore-nebari-backup-manual-1"
    pod = job["spec"]["template"]["spec"]
    claims = {v["name"]: v.get("persistentVolumeClaim") for v in pod["volumes"]}
    assert claims["backups"] == {"claimName": "nebari-backups", "readOnly": True}
    assert claims["shared-storage"] == {"claimName": "jupyterhub-prod-share"}  # written back
    for c in [*pod["initContainers"], *pod["containers"]]:
        assert {"name": "BACKUP_ID", "value": "nebari-backup-manual-1"} in c["env"]
    database = next(c for c in pod["initContainers"] if c["name"] == "keycloak-database")
    assert database["image"] == "pg:16" and database["command"] == ["sh", "/scripts/pg_restore.sh"]
    steps = restore_steps(Backup(), platform("prod"), "nebari-backup-manual-1", "backup/restore.yaml")
    assert steps == [
        "kubectl -n prod scale --replicas=0 deployment/conda-store-server",
        "kubectl -n prod scale --replicas=0 deployment/conda-store-worker",
        "kubectl apply -f backup/restore.yaml",
        "kubectl -n prod wait --for=condition=complete --timeout=2h job/nebari-restore-nebari-backup-manual-1",
        "kubectl -n prod logs job/nebari-restore-nebari-backup-manual-1 --all-containers",
        "kubectl -n prod scale --replicas=1 deployment/conda-store-server deployment/conda-store-worker",
        "kubectl -n prod rollout restart statefulset/keycloak-keycloakx",
        "kubectl -n prod delete job/nebari-restore-nebari-backup-manual-1",
    ]
    with pytest.raises(StagegraphError, match="a backup ID is the name of the Job"):
        render_restore(Backup(), platform("prod"), "../etc")


def test_doit_backup_restore_writes_the_job_and_prints_the_steps(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    out = project.doit("backup", "--restore", "latest").stdout
    assert "wrote backup/restore-latest.yaml: the Job that restores backup latest" in out
    assert "  kubectl apply -f backup/restore-latest.yaml" in out
    rendered = [
        o for o in yaml.safe_load_all((project.root / "backup" / "restore-latest.yaml").read_text()) if o
    ]
    assert [o["kind"] for o in rendered] == ["ConfigMap", "Job"]
    refused = project.doit("backup", "--restore", "Not_An_Id", check=False)
    assert refused.returncode != 0 and "a backup ID is the name of the Job" in refused.stdout + refused.stderr


def test_no_secret_of_the_config_reaches_the_backup_or_restore_render(tmp_path: Path) -> None:
    from checkhelpers import LOCK

    from stagegraph.backup import platform_of, to_yaml
    from stagegraph.backup_restore import render_restore
    from stagegraph.configfile import parse_config

    canary = "canary-backup-5e1f0c77-root-password"
    config = parse_config(
        "project_name: demo\nprovider: existing\nsecurity:\n  keycloak:\n"
        f"    initial_root_password: {canary}\n",
        "nebari-config.yaml",
    )
    p = platform_of(config, LOCK, "versions.yaml")
    text = to_yaml(render_backup(Backup(), p)) + to_yaml(render_restore(Backup(), p, "latest"))
    assert canary not in text
    # Every credential is a reference to a Secret: no env entry named like one holds a value.
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        spec = doc["spec"].get("jobTemplate", doc)["spec"] if "spec" in doc else None
        if spec is None or "template" not in spec:
            continue
        for c in [*spec["template"]["spec"]["initContainers"], *spec["template"]["spec"]["containers"]]:
            for e in c["env"]:
                if any(word in e["name"] for word in ("PASSWORD", "SECRET", "KEY_ID", "USER")):
                    assert "value" not in e or e["name"] in ("PGUSER",), (c["name"], e)
