"""The platform's data backup (`doit backup`), rendered as Kubernetes objects.

What the backup-and-restore RFD lists, in its order (Keycloak first, then the files), each
component everything its service keeps:
- keycloak: the realm (clients, groups, roles) and every user with their groups and
  identity-provider links, through the admin API (`keycloak/realm.json`, `users.json`:
  readable, but without password hashes, which the admin API never returns), and, when
  Keycloak runs on PostgreSQL, its database (`keycloak-postgresql.dump`: everything,
  password hashes included);
- conda_store: its PostgreSQL database (`conda-store-postgresql.dump`: builds,
  namespaces, role bindings), then its MinIO bucket (`conda-store-artifacts/`: lockfiles,
  logs, archives), then an archive of its volume (`conda-store.tar.gz`: the built
  environments). Database first: every artifact a dumped build names is then in the copy;
- shared_storage: an archive of the users' home and shared folders.

Databases are dumped with `pg_dump --format=custom` from the pinned `postgres` image, the
one the servers run, so client and server versions match; the bucket is copied with the
pinned AWS CLI (MinIO speaks S3; MinIO's own `mc` images are tagged by date, which `doit
bump` cannot order, and MinIO stopped publishing community images in 2025). Passwords
come from the Secrets the stages create, through `secretKeyRef`: no rendered file holds one.

One CronJob runs them as init containers of one pod, in that order, writing into a
`nebari-backups` volume under a folder named after the Job (the backup's ID); a last
container deletes folders older than `keep_days` and writes the ID to `/backup/LATEST`.
One pod means the backup volume (ReadWriteOnce) is never mounted twice, and a failing
component stops the run (the Job fails, visible in `kubectl get jobs`). The pod runs as
the JupyterLab image's user for every container, so each can write into folders the
others made and the prune can delete them. `stagegraph.backup_restore` renders the way
back. Everything here is pure; `stagegraph.upgrade.commands.backup` applies it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stagegraph import backup_scripts as scripts
from stagegraph.schema.tool import Backup

if TYPE_CHECKING:
    from stagegraph.lockfile import Lockfile
    from stagegraph.schema.config import NebariConfig

NAME = "nebari-backup"
CLAIM = "nebari-backups"
SCRIPTS = "nebari-backup-scripts"
MOUNT = "/backup"
JOB_LABEL = "batch.kubernetes.io/job-name"
#: jovyan:users of the JupyterLab image, which reads and writes the shared volumes as it.
RUN_AS = (1000, 100)


@dataclass(frozen=True)
class Database:
    """A PostgreSQL server of the platform: Service, Secret and StatefulSet are `name`."""

    name: str
    database: str
    user: str
    port: int = 5432


@dataclass(frozen=True)
class Bucket:
    """conda-store's MinIO bucket and the Secret holding its keys."""

    service: str
    port: int
    bucket: str
    secret: str
    region: str


@dataclass(frozen=True)
class Platform:
    """Where the platform keeps its data and which images read it (config and pins)."""

    namespace: str
    keycloak_url: str
    tools_image: str  # python, tar and find: the JupyterLab image
    postgres_image: str
    s3_image: str
    keycloak_database: Database | None  # None: Keycloak runs on dev-file
    conda_store_database: Database | None  # None: an older conda-store on SQLite
    artifacts: Bucket | None  # None: an older conda-store without object storage

    @property
    def volumes(self) -> tuple[tuple[str, str, str], ...]:
        """(component, volume name, claim) of the volumes archived with tar."""
        return (
            ("conda_store", "conda-store", f"conda-store-{self.namespace}-share"),
            ("shared_storage", "shared-storage", f"jupyterhub-{self.namespace}-share"),
        )


def platform_of(
    config: NebariConfig,
    lock: Lockfile,
    lockfile: str,
    keycloak_url: str | None = None,
    applied: Mapping[str, Any] | None = None,
) -> Platform:
    """The Platform a config deploys (pure: the config, the pins and what records say).

    applied: the databases the applied stages run on (`security.keycloak.database`,
    `conda_store.database`, as `stagegraph.immutable.recorded` reads them). They win over
    the config, which may already name the next one: a dev-file Keycloak or a SQLite
    conda-store whose switch the deploy refused has no PostgreSQL to dump.
    """
    from stagegraph.lockfile import ImagePin
    from stagegraph.stages import keycloak as kc
    from stagegraph.stages import svc_conda_store_backends as cs

    def image(key: str) -> str:
        pin = lock.pin(f"images.{key}", file=lockfile, user="backup")
        return pin.ref if isinstance(pin, ImagePin) else str(pin)

    namespace = config.namespace
    applied = applied or {}
    vendor = applied.get("security.keycloak.database") or kc.database_vendor(
        dict(config.security.keycloak.overrides)
    )
    conda_store_postgres = applied.get("conda_store.database", "postgresql") == "postgresql"
    return Platform(
        namespace=namespace,
        keycloak_url=keycloak_url or f"http://{kc.SERVICE}.{namespace}.svc:80{kc.BASE_PATH}",
        tools_image=config.default_images.jupyterlab or image("jupyterlab"),
        postgres_image=image("postgres"),
        s3_image=image("aws_cli"),
        keycloak_database=Database(kc.DATABASE, kc.DB_NAME, kc.DB_USER) if vendor == kc.POSTGRES else None,
        conda_store_database=Database(cs.DATABASE, cs.DB_NAME, cs.DB_USER) if conda_store_postgres else None,
        artifacts=Bucket(cs.MINIO, cs.MINIO_PORT, cs.BUCKET, cs.MINIO_SECRET, cs.REGION)
        if conda_store_postgres
        else None,
    )


def secret_env(env: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def keycloak_admin_env(p: Platform) -> list[dict[str, Any]]:
    from stagegraph.stages.keycloak import ADMIN_SECRET

    return [
        {"name": "KEYCLOAK_URL", "value": p.keycloak_url},
        secret_env("KEYCLOAK_USER", ADMIN_SECRET, "username"),
        secret_env("KEYCLOAK_PASSWORD", ADMIN_SECRET, "password"),
    ]


def postgres_env(p: Platform, db: Database) -> list[dict[str, Any]]:
    """libpq's variables: pg_dump and pg_restore take host, user and password from them."""
    from stagegraph.stages.svc_stateful import PASSWORD_KEY

    return [
        {"name": "NAME", "value": db.name},
        {"name": "PGHOST", "value": f"{db.name}.{p.namespace}.svc"},
        {"name": "PGPORT", "value": str(db.port)},
        {"name": "PGUSER", "value": db.user},
        {"name": "PGDATABASE", "value": db.database},
        secret_env("PGPASSWORD", db.name, PASSWORD_KEY),
    ]


def s3_env(b: Bucket, namespace: str) -> list[dict[str, Any]]:
    return [
        {"name": "NAME", "value": "conda-store-artifacts"},
        {"name": "S3_ENDPOINT", "value": f"http://{b.service}.{namespace}.svc:{b.port}"},
        {"name": "BUCKET", "value": b.bucket},
        {"name": "AWS_DEFAULT_REGION", "value": b.region},
        {"name": "AWS_CONFIG_FILE", "value": "/scripts/aws-config"},
        secret_env("AWS_ACCESS_KEY_ID", b.secret, "rootUser"),
        secret_env("AWS_SECRET_ACCESS_KEY", b.secret, "rootPassword"),
    ]


def container(
    name: str,
    image: str,
    script: str,
    env: list[dict[str, Any]],
    mounts: Sequence[dict[str, Any]] = (),
    *,
    id_env: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One step: `script` from the scripts volume, with the backup volume at /backup."""
    run_id = id_env or {
        "name": "RUN",
        "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_LABEL}']"}},
    }
    return {
        "name": name,
        "image": image,
        "command": ["python" if script.endswith(".py") else "sh", f"/scripts/{script}"],
        # HOME: the images' own home belongs to another user than the pod's.
        "env": [run_id, {"name": "HOME", "value": "/tmp"}, *env],  # noqa: S108 - the container's own /tmp
        "volumeMounts": [
            {"name": "backups", "mountPath": MOUNT},
            {"name": "scripts", "mountPath": "/scripts", "readOnly": True},
            *mounts,
        ],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }


def pod_security() -> dict[str, Any]:
    uid, gid = RUN_AS
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "stagegraph"}


def meta(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels()}


def _steps(settings: Backup, p: Platform) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(init containers, extra volumes) of a backup run, in the order they run."""
    out = f"{MOUNT}/$(RUN)"
    steps: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if "keycloak" in settings.components:
        steps.append(
            container(
                "keycloak",
                p.tools_image,
                "keycloak_export.py",
                [{"name": "OUT", "value": f"{out}/keycloak"}, *keycloak_admin_env(p)],
            )
        )
        if p.keycloak_database is not None:
            env = [{"name": "OUT", "value": out}, *postgres_env(p, p.keycloak_database)]
            steps.append(container("keycloak-database", p.postgres_image, "pg_dump.sh", env))
    if "conda_store" in settings.components and p.conda_store_database is not None:
        env = [{"name": "OUT", "value": out}, *postgres_env(p, p.conda_store_database)]
        steps.append(container("conda-store-database", p.postgres_image, "pg_dump.sh", env))
    if "conda_store" in settings.components and p.artifacts is not None:
        env = [{"name": "OUT", "value": out}, *s3_env(p.artifacts, p.namespace)]
        steps.append(container("conda-store-artifacts", p.s3_image, "bucket_mirror.sh", env))
    for component, volume, claim in p.volumes:
        if component not in settings.components:
            continue
        volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        env = [
            {"name": "OUT", "value": out},
            {"name": "NAME", "value": volume},
            {"name": "SOURCE", "value": f"/data/{volume}"},
        ]
        mount = {"name": volume, "mountPath": f"/data/{volume}", "readOnly": True}
        steps.append(container(volume, p.tools_image, "archive.sh", env, [mount]))
    return steps, volumes


def render_backup(settings: Backup, p: Platform) -> list[dict[str, Any]]:
    """The backup's Kubernetes objects (a service account, a claim, scripts, the CronJob). Pure."""
    ns = p.namespace
    steps, volumes = _steps(settings, p)
    prune = container(
        "prune", p.tools_image, "prune.sh", [{"name": "KEEP_DAYS", "value": str(settings.keep_days)}]
    )
    pod = {
        "metadata": {"labels": labels()},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": NAME,
            "automountServiceAccountToken": False,
            "securityContext": pod_security(),
            "initContainers": steps,
            "containers": [prune],
            "volumes": [
                {"name": "backups", "persistentVolumeClaim": {"claimName": CLAIM}},
                {"name": "scripts", "configMap": {"name": SCRIPTS}},
                *volumes,
            ],
        },
    }
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": settings.storage_size}},
    }
    if settings.storage_class is not None:
        claim_spec["storageClassName"] = settings.storage_class
    data = {
        "keycloak_export.py": scripts.KEYCLOAK_EXPORT,
        "pg_dump.sh": scripts.PG_DUMP,
        "bucket_mirror.sh": scripts.BUCKET_MIRROR,
        "aws-config": scripts.AWS_CONFIG,
        "archive.sh": scripts.ARCHIVE,
        "prune.sh": scripts.PRUNE,
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(NAME, ns),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta(CLAIM, ns),
            "spec": claim_spec,
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(SCRIPTS, ns), "data": data},
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta(NAME, ns),
            "spec": {
                "schedule": settings.schedule,
                "timeZone": "Etc/UTC",
                "suspend": settings.suspend,
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "metadata": {"labels": labels()},
                    "spec": {"backoffLimit": 0, "template": pod},
                },
            },
        },
    ]


def job_now(cronjob: dict[str, Any], name: str) -> dict[str, Any]:
    """A Job from the CronJob's template, as `kubectl create job --from=cronjob/...` makes one."""
    template = cronjob["spec"]["jobTemplate"]
    m = cronjob["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": m["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        },
        "spec": template["spec"],
    }


def to_yaml(objects: list[dict[str, Any]]) -> str:
    import yaml

    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False) for o in objects)
