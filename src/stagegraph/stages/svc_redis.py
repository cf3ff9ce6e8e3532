"""Redis from the official `redis` image: conda-store's celery broker and result backend (07).

Clients must authenticate: the server takes `--requirepass` from the Secret through its
environment, so the password is in no rendered file (it is in the server's own argument
list inside its container, where the environment holds it anyway). The readiness probe
authenticates with `REDISCLI_AUTH`, which redis-cli reads, and expects PONG: with a
password set, an unauthenticated PING only answers NOAUTH. Append-only persistence keeps
queued builds across a restart of the pod.

Not Bitnami's redis chart (its data is in ../shared/charts/redis/18.19.4 for reference
only): its images moved to the unmaintained bitnamilegacy repository (see svc_stateful).
"""

from __future__ import annotations

from stagegraph.stage import RenderContext
from stagegraph.stages.svc_images import resolve_image
from stagegraph.stages.svc_kube import secret_env
from stagegraph.stages.svc_stateful import PASSWORD_KEY, Database, render_database
from stagegraph.tfjson import TerraformModule

PORT = 6379
DATA_DIR = "/data"
#: Nebari's Redis volume had the Bitnami chart's default size (no config field in Nebari).
SIZE = "8Gi"


def redis(ctx: RenderContext, m: TerraformModule, name: str, node_selector: str) -> Database:
    image = resolve_image(ctx, "redis", field="images.redis")
    probe = {"exec": {"command": ["sh", "-c", "redis-cli -h 127.0.0.1 ping | grep -q PONG"]}}
    container = {
        "name": "redis",
        "image": image.ref,
        "command": [
            "sh",
            "-c",
            f'exec redis-server --port {PORT} --requirepass "$REDIS_PASSWORD" --appendonly yes --dir {DATA_DIR}',
        ],
        "env": [
            secret_env("REDIS_PASSWORD", name, PASSWORD_KEY),
            secret_env("REDISCLI_AUTH", name, PASSWORD_KEY),
        ],
        "ports": [{"name": "redis", "containerPort": PORT}],
        "readinessProbe": {**probe, "periodSeconds": 10},
        "livenessProbe": {**probe, "initialDelaySeconds": 15, "periodSeconds": 20, "failureThreshold": 6},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    }
    return render_database(
        m, name, container, node_selector, port=("redis", PORT), mount_path=DATA_DIR, size=SIZE
    )
