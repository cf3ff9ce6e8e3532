"""The platform's data backup (`doit backup`), rendered as Kubernetes objects.

What the backup-and-restore RFD lists, in its order (Keycloak first, then the files):
- keycloak: the realm (clients, groups, roles) through the admin API's partial export, and
  every user with their groups (no password hashes: the admin API does not export them;
  users of the password login reset theirs after a restore);
- conda_store: an archive of the conda-store volume (environment specs and builds);
- shared_storage: an archive of the users' home and shared folders.

One CronJob runs them as init containers of one pod, in that order, writing into a
`nebari-backups` volume under a folder named after the Job; a last container deletes
folders older than `keep_days`. One pod means the backup volume (ReadWriteOnce) is never
mounted twice, and a failing component stops the run (the Job fails, visible in
`kubectl get jobs`). `render_backup` is pure; `stagegraph.upgrade.backup_apply` applies it.
"""

from __future__ import annotations

from typing import Any

from stagegraph.schema.tool import Backup
from stagegraph.stages.keycloak import ADMIN_SECRET

NAME = "nebari-backup"
CLAIM = "nebari-backups"
SCRIPTS = "nebari-backup-scripts"
MOUNT = "/backup"
JOB_LABEL = "batch.kubernetes.io/job-name"

KEYCLOAK_EXPORT = '''\
"""Export the nebari realm and its users from Keycloak's admin API into $OUT."""
import json, os, urllib.parse, urllib.request

base, out = os.environ["KEYCLOAK_URL"].rstrip("/"), os.environ["OUT"]
form = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
    "username": os.environ["KEYCLOAK_USER"], "password": os.environ["KEYCLOAK_PASSWORD"]}).encode()
with urllib.request.urlopen(base + "/realms/master/protocol/openid-connect/token", form, timeout=60) as r:
    token = json.load(r)["access_token"]

def call(path, method="GET"):
    req = urllib.request.Request(base + "/admin/realms/nebari" + path, method=method,
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)

os.makedirs(out, exist_ok=True)
realm = call("/partial-export?exportClients=true&exportGroupsAndRoles=true", "POST")
users, first = [], 0
while True:
    page = call(f"/users?first={first}&max=200&briefRepresentation=false")
    for user in page:
        user["groups"] = [g["path"] for g in call(f"/users/{user['id']}/groups")]
    users += page
    first += len(page)
    if len(page) < 200:
        break
for name, data in (("realm.json", realm), ("users.json", users)):
    with open(os.path.join(out, name), "w") as f:
        json.dump(data, f, indent=2)
print(f"keycloak: realm and {len(users)} users exported to {out}")
'''
ARCHIVE = """\
set -eu
mkdir -p "$OUT"
tar -czf "$OUT/$NAME.tar.gz.partial" -C "$SOURCE" .
mv "$OUT/$NAME.tar.gz.partial" "$OUT/$NAME.tar.gz"
echo "$NAME: archived $SOURCE to $OUT/$NAME.tar.gz"
"""
PRUNE = """\
set -eu
find /backup -mindepth 1 -maxdepth 1 -type d -mtime "+$KEEP_DAYS" -print -exec rm -rf {} +
echo "$RUN" > /backup/LATEST
echo "backup $RUN complete"
"""


def _run_dir() -> list[dict[str, Any]]:
    return [
        {"name": "RUN", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_LABEL}']"}}},
    ]


def _container(
    name: str, image: str, script: str, env: list[dict[str, Any]], mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "command": ["python" if script.endswith(".py") else "sh", f"/scripts/{script}"],
        "env": [*_run_dir(), *env],
        "volumeMounts": [
            {"name": "backups", "mountPath": MOUNT},
            {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
            *mounts,
        ],
        "securityContext": {"allowPrivilegeEscalation": False},
    }


def render_backup(settings: Backup, namespace: str, image: str, keycloak_url: str) -> list[dict[str, Any]]:
    """The backup's Kubernetes objects (a claim, scripts, the CronJob). Pure."""
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "stagegraph"}

    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": labels}

    volumes: list[dict[str, Any]] = [
        {"name": "backups", "persistentVolumeClaim": {"claimName": CLAIM}},
        {"name": "scripts", "configMap": {"name": SCRIPTS}},
    ]
    steps: list[dict[str, Any]] = []
    out = f"{MOUNT}/$(RUN)"
    if "keycloak" in settings.components:
        secret = ADMIN_SECRET
        steps.append(
            _container(
                "keycloak",
                image,
                "keycloak_export.py",
                [
                    {"name": "OUT", "value": f"{out}/keycloak"},
                    {"name": "KEYCLOAK_URL", "value": keycloak_url},
                    {
                        "name": "KEYCLOAK_USER",
                        "valueFrom": {"secretKeyRef": {"name": secret, "key": "username"}},
                    },
                    {
                        "name": "KEYCLOAK_PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}},
                    },
                ],
                [],
            )
        )
    for component, volume, claim in (
        ("conda_store", "conda-store", f"conda-store-{namespace}-share"),
        ("shared_storage", "shared-storage", f"jupyterhub-{namespace}-share"),
    ):
        if component not in settings.components:
            continue
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        steps.append(
            _container(
                volume,
                image,
                "archive.sh",
                [
                    {"name": "OUT", "value": out},
                    {"name": "NAME", "value": volume},
                    {"name": "SOURCE", "value": f"/data/{volume}"},
                ],
                [{"name": volume, "mountPath": f"/data/{volume}", "readOnly": True}],
            )
        )
    prune = _container(
        "prune", image, "prune.sh", [{"name": "KEEP_DAYS", "value": str(settings.keep_days)}], []
    )
    pod = {
        "metadata": {"labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": NAME,
            "automountServiceAccountToken": False,
            "initContainers": steps,
            "containers": [prune],
            "volumes": volumes,
        },
    }
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": settings.storage_size}},
    }
    if settings.storage_class is not None:
        claim_spec["storageClassName"] = settings.storage_class
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(NAME),
            "automountServiceAccountToken": False,
        },
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(CLAIM), "spec": claim_spec},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(SCRIPTS),
            "data": {"keycloak_export.py": KEYCLOAK_EXPORT, "archive.sh": ARCHIVE, "prune.sh": PRUNE},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta(NAME),
            "spec": {
                "schedule": settings.schedule,
                "timeZone": "Etc/UTC",
                "suspend": settings.suspend,
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {"metadata": {"labels": labels}, "spec": {"backoffLimit": 0, "template": pod}},
            },
        },
    ]


def job_now(cronjob: dict[str, Any], name: str) -> dict[str, Any]:
    """A Job from the CronJob's template, as `kubectl create job --from=cronjob/...` makes one."""
    template = cronjob["spec"]["jobTemplate"]
    meta = cronjob["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        },
        "spec": template["spec"],
    }


def to_yaml(objects: list[dict[str, Any]]) -> str:
    import yaml

    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False) for o in objects)
