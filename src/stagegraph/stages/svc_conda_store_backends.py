"""What conda-store keeps its state in, as Nebari runs it: PostgreSQL, Redis and MinIO.

- PostgreSQL (`svc_postgres`): builds, environments, namespaces and role bindings.
- Redis (`svc_redis`): the celery broker and result backend between the server and the
  worker, and conda-store's build locks.
- MinIO (the lockfile's minio chart, S3-compatible): build artifacts (lockfiles, logs,
  archives, YAML exports), sized by `conda_store.object_storage`. conda-store hands users
  presigned URLs on the external endpoint, Traefik's `minio` entrypoint (port 9080, opened
  by 04), as in Nebari.

Every password reaches the pods as an environment variable read from a Secret; the
configuration file (`settings.json` plus `conda_store_config.py`) holds only hosts, ports,
names and the variables' names. Nebari 2025.10.1 wrote the passwords into a Secret as one
JSON document; a Secret per service keeps each generated value a single reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages import svc_minio
from stagegraph.stages.svc_kube import (
    NAMESPACE,
    TRAEFIK_API,
    manifest,
    metadata,
    secret_env,
)
from stagegraph.stages.svc_postgres import postgres
from stagegraph.stages.svc_redis import redis
from stagegraph.tfjson import Ref, TerraformModule, literal

DATABASE = "conda-store-postgresql"
#: The database and its owner inside it (`doit backup` dumps it as this user).
DB_NAME = DB_USER = "conda-store"
REDIS = "conda-store-redis"
#: The minio chart names its Service after the release.
MINIO = "conda-store-minio"
MINIO_SECRET = "conda-store-minio-credentials"  # noqa: S105 - the name of a generated secret
MINIO_USER = "conda-store"
MINIO_PORT = svc_minio.PORT
#: Traefik's entrypoint for the object store (04 opens it on this port).
MINIO_ENTRYPOINT = "minio"
MINIO_EXTERNAL_PORT = 9080
BUCKET = "conda-store"
#: MinIO's default region, which conda-store's S3 client must name to sign requests.
REGION = "us-east-1"

#: Environment variables the conda-store configuration reads its secrets from.
DB_PASSWORD_ENV = "CONDA_STORE_DB_PASSWORD"  # noqa: S105 - a variable's name
REDIS_PASSWORD_ENV = "CONDA_STORE_REDIS_PASSWORD"  # noqa: S105 - a variable's name
S3_ACCESS_KEY_ENV = "CONDA_STORE_S3_ACCESS_KEY"
S3_SECRET_KEY_ENV = "CONDA_STORE_S3_SECRET_KEY"  # noqa: S105 - a variable's name


@dataclass(frozen=True)
class Backends:
    """Connection settings (for settings.json), secret env vars, and what to wait for."""

    settings: dict[str, Any]
    env: list[dict[str, Any]]
    ready: tuple[Ref, ...]


def conda_store_backends(ctx: RenderContext, m: TerraformModule, node_selector: str) -> Backends:
    db = postgres(ctx, m, DATABASE, node_selector, database=DB_NAME, username=DB_USER)
    broker = redis(ctx, m, REDIS, node_selector)
    minio = svc_minio.minio(
        ctx,
        m,
        MINIO,
        secret=MINIO_SECRET,
        user=MINIO_USER,
        bucket=BUCKET,
        size=literal(ctx.config.conda_store.object_storage),
        # The chart asks for 16Gi by default, sized for a distributed cluster.
        resources={"cpu": "100m", "memory": "512Mi"},
        node_selector=node_selector,
    )
    secure = ctx.config.certificate.type != "disabled"
    _external_route(m, ctx.config.certificate.type, after=(minio,))
    env = [
        db.server.password_env(DB_PASSWORD_ENV),
        broker.password_env(REDIS_PASSWORD_ENV),
        secret_env(S3_ACCESS_KEY_ENV, MINIO_SECRET, svc_minio.ROOT_USER_KEY),
        secret_env(S3_SECRET_KEY_ENV, MINIO_SECRET, svc_minio.ROOT_PASSWORD_KEY),
    ]
    settings = {
        "database": {
            "host": db.server.host,
            "port": db.server.port,
            "name": db.database,
            "user": db.username,
            "password_env": DB_PASSWORD_ENV,
        },
        "redis": {"host": broker.host, "port": broker.port, "password_env": REDIS_PASSWORD_ENV},
        "s3": {
            "internal_endpoint": f"{MINIO}.{NAMESPACE}.svc:{MINIO_PORT}",
            "external_endpoint": f"${{var.domain}}:{MINIO_EXTERNAL_PORT}",
            "external_secure": secure,
            "bucket": BUCKET,
            "region": REGION,
            "access_key_env": S3_ACCESS_KEY_ENV,
            "secret_key_env": S3_SECRET_KEY_ENV,
        },
    }
    return Backends(settings=settings, env=env, ready=(*db.server.ready, *broker.ready, minio))


def _external_route(m: TerraformModule, certificate: str, after: tuple[Ref, ...]) -> Ref:
    """Presigned artifact URLs reach MinIO through Traefik's `minio` entrypoint."""
    spec: dict[str, Any] = {
        "entryPoints": [MINIO_ENTRYPOINT],
        "routes": [
            {
                "kind": "Rule",
                "match": "Host(`${var.domain}`)",
                "services": [{"name": MINIO, "port": MINIO_PORT, "namespace": NAMESPACE}],
            }
        ],
    }
    # The entrypoint has no TLS of its own (04): the route terminates it with the
    # platform's certificate, as websecure does.
    if certificate == "lets-encrypt":
        spec["tls"] = {"certResolver": "letsencrypt"}
    elif certificate != "disabled":
        spec["tls"] = {}
    body = {
        "apiVersion": TRAEFIK_API,
        "kind": "IngressRoute",
        "metadata": metadata("conda-store-minio"),
        "spec": spec,
    }
    return manifest(m, "route_conda_store_minio", body, after)
