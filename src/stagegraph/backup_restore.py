"""The way back from a backup (`doit backup --restore ID`): one Job, rendered, never automatic.

The Job reads the folder `/backup/<ID>` of the backup volume (`latest`: the newest complete
run) and puts back, for the components the config backs up, in this order:
- conda-store's database (`pg_restore --clean --if-exists --single-transaction`), its
  bucket (`aws s3 sync` back into MinIO) and its volume (tar extracted over it);
- Keycloak's database, when the backup has its dump and Keycloak runs on PostgreSQL;
- the shared storage (tar extracted over the users' folders: files added since stay);
- last, with Keycloak running: the users of a backup that has no Keycloak dump (one taken
  on dev-file) are imported through the admin API, without passwords (they set a new one).

conda-store's server and worker are stopped before and started after (a build finishing
mid-restore would write rows the dump then drops). Keycloak stays up: importing users needs
it running, and which path a backup takes (dump or import) is known only inside the Job.
Its database is restored in one transaction, which waits for Keycloak's own transactions
and blocks them until it commits; a restart afterwards drops Keycloak's caches of the old
rows. `restore_steps` says all this as commands; `doit backup --restore` prints them
rather than deciding when the platform may be stopped. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from stagegraph import backup_scripts as scripts
from stagegraph.backup import (
    CLAIM,
    Platform,
    container,
    keycloak_admin_env,
    labels,
    meta,
    pod_security,
    postgres_env,
    s3_env,
)
from stagegraph.errors import StagegraphError
from stagegraph.schema.tool import Backup
from stagegraph.stages import svc_conda_store as conda_store

SCRIPTS = "nebari-restore-scripts"
#: A backup's ID is the name of the Job that took it (a DNS label), or `latest`.
_ID = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
#: What writes to the restored data: stopped during the restore.
KEYCLOAK_WORKLOAD = "statefulset/keycloak-keycloakx"  # the keycloakx chart's <release>-keycloakx
CONDA_STORE_WORKLOADS = (f"deployment/{conda_store.NAME}", f"deployment/{conda_store.WORKER}")


def check_id(backup_id: str) -> str:
    if not _ID.match(backup_id):
        raise StagegraphError(
            f"doit backup --restore {backup_id!r}: a backup ID is the name of the Job that took it "
            "(kubectl get jobs -l app.kubernetes.io/name=nebari-backup), or latest"
        )
    return backup_id


def job_name(backup_id: str) -> str:
    return f"nebari-restore-{backup_id}"[:63].rstrip("-")


def _steps(
    settings: Backup, p: Platform, backup_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ident = {"name": "BACKUP_ID", "value": backup_id}
    steps: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []

    def step(
        name: str, image: str, script: str, env: list[dict[str, Any]], mounts: Sequence[dict[str, Any]] = ()
    ) -> None:
        steps.append(container(name, image, script, env, mounts, id_env=ident))

    def volume(component: str) -> None:
        for comp, name, claim in p.volumes:
            if comp == component:
                volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim}})
                env = [{"name": "NAME", "value": name}, {"name": "TARGET", "value": f"/data/{name}"}]
                step(name, p.tools_image, "unarchive.sh", env, [{"name": name, "mountPath": f"/data/{name}"}])

    if "conda_store" in settings.components:
        if p.conda_store_database is not None:
            step(
                "conda-store-database",
                p.postgres_image,
                "pg_restore.sh",
                postgres_env(p, p.conda_store_database),
            )
        if p.artifacts is not None:
            step("conda-store-artifacts", p.s3_image, "bucket_restore.sh", s3_env(p.artifacts, p.namespace))
        volume("conda_store")
    if "keycloak" in settings.components and p.keycloak_database is not None:
        # OPTIONAL: a backup taken on dev-file has no dump; its users are imported below.
        env = [*postgres_env(p, p.keycloak_database), {"name": "OPTIONAL", "value": "yes"}]
        step("keycloak-database", p.postgres_image, "pg_restore.sh", env)
    if "shared_storage" in settings.components:
        volume("shared_storage")
    return steps, volumes


def render_restore(settings: Backup, p: Platform, backup_id: str) -> list[dict[str, Any]]:
    """The restore Job of backup `backup_id` and its scripts. Pure."""
    check_id(backup_id)
    steps, volumes = _steps(settings, p, backup_id)
    ident = {"name": "BACKUP_ID", "value": backup_id}
    if "keycloak" in settings.components:
        last = container(
            "keycloak-users", p.tools_image, "keycloak_import.py", keycloak_admin_env(p), id_env=ident
        )
    else:
        last = steps.pop()
    name = job_name(backup_id)
    pod = {
        "metadata": {"labels": labels()},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "nebari-backup",
            "automountServiceAccountToken": False,
            "securityContext": pod_security(),
            "initContainers": steps,
            "containers": [last],
            "volumes": [
                {"name": "backups", "persistentVolumeClaim": {"claimName": CLAIM, "readOnly": True}},
                {"name": "scripts", "configMap": {"name": SCRIPTS}},
                *volumes,
            ],
        },
    }
    data = {
        "pg_restore.sh": scripts.PG_RESTORE,
        "bucket_restore.sh": scripts.BUCKET_RESTORE,
        "aws-config": scripts.AWS_CONFIG,
        "unarchive.sh": scripts.UNARCHIVE,
        "keycloak_import.py": scripts.KEYCLOAK_IMPORT,
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(SCRIPTS, p.namespace), "data": data},
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta(name, p.namespace),
            "spec": {"backoffLimit": 0, "template": pod},
        },
    ]


def restore_steps(settings: Backup, p: Platform, backup_id: str, file: str) -> list[str]:
    """What the user runs, in order: stop the writers, run the Job, start them again."""
    ns = p.namespace
    writers: list[str] = []
    if "conda_store" in settings.components:
        writers.extend(CONDA_STORE_WORKLOADS)
    name = job_name(backup_id)
    lines = [f"kubectl -n {ns} scale --replicas=0 {w}" for w in writers]
    lines += [
        f"kubectl apply -f {file}",
        f"kubectl -n {ns} wait --for=condition=complete --timeout=2h job/{name}",
        f"kubectl -n {ns} logs job/{name} --all-containers",
        f"kubectl -n {ns} scale --replicas=1 {' '.join(writers)}" if writers else "",
        f"kubectl -n {ns} rollout restart {KEYCLOAK_WORKLOAD}"
        if "keycloak" in settings.components and p.keycloak_database is not None
        else "",
        f"kubectl -n {ns} delete job/{name}",
    ]
    return [line for line in lines if line]
