"""conda-store: builds the configured environments and serves them at /conda-store.

As in Nebari, two Deployments: the server (API and UI) and a celery worker that builds.
They share PostgreSQL, Redis and MinIO (`svc_conda_store_backends`) and the shared
conda-store volume (`storage.conda_store`), which every JupyterLab server and Dask worker
mounts under /home/conda/<namespace>. The worker watches the environment files of
`environments` (a ConfigMap) and builds them into `conda_store.default_namespace`; it
gets `conda_store.worker.resources`. Both load the same configuration file, so both get
the same environment (secrets as `secretKeyRef`s).
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages import svc_argo_scheduler
from stagegraph.stages.svc_conda_store_backends import conda_store_backends
from stagegraph.stages.svc_images import resolve_image
from stagegraph.stages.svc_kube import (
    NAMESPACE,
    Route,
    deployment,
    host,
    ingress_route,
    manifest,
    service,
)
from stagegraph.stages.svc_oauth import client_id, client_secret_env, endpoints
from stagegraph.stages.svc_roles import CONDA_STORE_ROLES, conda_store_roles
from stagegraph.stages.svc_storage import SharedVolumes
from stagegraph.tfjson import Ref, TerraformModule, literal

NAME = "conda-store-server"
WORKER = "conda-store-worker"
PORT = 8080
ENVIRONMENTS_DIR = "/opt/environments"
#: The server answers API calls and serves the UI; builds run in the worker.
SERVER_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}

CONFIG = """\
# stagegraph 07: conda-store settings. Values from nebari-config.yaml come from
# settings.json (conda_store.*); conda_store.extra_config is appended below.
import json
import os
from urllib.parse import quote

with open("/etc/conda-store/settings.json") as handle:
    settings = json.load(handle)

c.CondaStore.store_directory = "/home/conda/"
c.CondaStore.environment_directory = "{store_directory}/{namespace}/envs/{name}"
c.CondaStore.default_namespace = settings["default_namespace"]

# PostgreSQL, and Redis as celery's broker and result backend (conda-store uses redis_url
# for both when set); passwords come from the pod's environment (Kubernetes secrets).
db = settings["database"]
db_password = quote(os.environ[db["password_env"]], safe="")
c.CondaStore.database_url = (
    f"postgresql+psycopg2://{quote(db['user'], safe='')}:{db_password}@{db['host']}:{db['port']}/{db['name']}"
)
redis = settings["redis"]
redis_password = quote(os.environ[redis["password_env"]], safe="")
c.CondaStore.redis_url = f"redis://:{redis_password}@{redis['host']}:{redis['port']}/0"

# Build artifacts in MinIO (S3); the class by its import path (traitlets resolves it).
s3 = settings["s3"]
c.CondaStore.storage_class = "conda_store_server.storage.S3Storage"
c.S3Storage.internal_endpoint = s3["internal_endpoint"]
c.S3Storage.internal_secure = False
c.S3Storage.external_endpoint = s3["external_endpoint"]
c.S3Storage.external_secure = s3["external_secure"]
c.S3Storage.access_key = os.environ[s3["access_key_env"]]
c.S3Storage.secret_key = os.environ[s3["secret_key_env"]]
c.S3Storage.region = s3["region"]
c.S3Storage.bucket_name = s3["bucket"]

c.CondaStoreServer.address = "0.0.0.0"
c.CondaStoreServer.port = 8080
c.CondaStoreServer.url_prefix = "/conda-store"
c.CondaStoreServer.behind_proxy = True
# Builds run in the separate worker Deployment.
c.CondaStoreServer.standalone = False
# The authentication class (a GenericOAuthAuthentication that applies roles) is below.
oauth = settings["oauth"]
c.GenericOAuthAuthentication.authorize_url = oauth["authorize_url"]
c.GenericOAuthAuthentication.access_token_url = oauth["token_url"]
c.GenericOAuthAuthentication.user_data_url = oauth["userinfo_url"]
c.GenericOAuthAuthentication.oauth_callback_url = oauth["callback_url"]
c.GenericOAuthAuthentication.client_id = oauth["client_id"]
c.GenericOAuthAuthentication.client_secret = os.environ["CONDA_STORE_OAUTH_CLIENT_SECRET"]
c.GenericOAuthAuthentication.user_data_key = "preferred_username"
c.GenericOAuthAuthentication.tls_verify = False

c.CondaStoreWorker.watch_paths = ["/opt/environments"]
if settings.get("max_workers") is not None:
    c.CondaStoreWorker.concurrency = settings["max_workers"]

for section, traits in settings["extra_settings"].items():
    for trait, value in traits.items():
        setattr(getattr(c, section), trait, value)

"""
EXTRA_CONFIG_MARK = "\n# --- conda_store.extra_config ---\n"


def conda_store(ctx: RenderContext, m: TerraformModule, node_selector: str, volumes: SharedVolumes) -> Ref:
    section = ctx.config.conda_store
    argo = ctx.config.argo_workflows.enabled
    scheduler = svc_argo_scheduler.CONDA_STORE_CONFIG if argo else ""
    backends = conda_store_backends(ctx, m, node_selector)
    m.local(
        "conda_store_environments",
        {
            str(literal(name)): literal(env.model_dump(mode="json", exclude_none=True))
            for name, env in ctx.config.environments.items()
        },
    )
    ep = endpoints()
    worker = section.worker
    m.local(
        "conda_store_settings",
        {
            "url": "https://${var.domain}/conda-store/",
            "default_namespace": literal(section.default_namespace),
            "max_workers": worker.max_workers if worker is not None else None,
            "extra_settings": literal(dict(section.extra_settings)),
            "roles": conda_store_roles(ctx),
            "oauth": {
                "client_id": client_id("conda_store"),
                "authorize_url": ep["authorize"],
                "token_url": ep["token"],
                "userinfo_url": ep["userinfo"],
                "callback_url": "https://${var.domain}/conda-store/oauth_callback/",
            },
            **backends.settings,
        },
    )
    environments = m.resource(
        "kubernetes_config_map",
        "conda_store_environments",
        {
            "metadata": [{"name": "conda-store-environments", "namespace": NAMESPACE}],
            "data": "${{for name, env in local.conda_store_environments : name => yamlencode(env)}}",
        },
    )
    config = m.resource(
        "kubernetes_config_map",
        "conda_store_config",
        {
            "metadata": [{"name": "conda-store-config", "namespace": NAMESPACE}],
            "data": {
                "settings.json": "${jsonencode(local.conda_store_settings)}",
                "conda_store_config.py": literal(
                    CONFIG + CONDA_STORE_ROLES + scheduler + EXTRA_CONFIG_MARK + section.extra_config
                ),
            },
        },
    )
    image = resolve_image(
        ctx, "conda_store", field="conda_store.image", name=section.image, tag=section.image_tag
    )
    # Both load the same configuration file, which reads every one of these variables.
    env = [
        client_secret_env("CONDA_STORE_OAUTH_CLIENT_SECRET", "conda_store"),
        *([svc_argo_scheduler.conda_store_env()] if argo else []),
        *backends.env,
    ]
    config_volume = {"name": "config", "configMap": {"name": "conda-store-config"}}
    shared = {"name": "conda-store", "persistentVolumeClaim": {"claimName": volumes.conda_store}}
    mounts = [
        {"name": "config", "mountPath": "/etc/conda-store"},
        {"name": "conda-store", "mountPath": "/home/conda"},
    ]
    server: dict[str, Any] = {
        "name": "conda-store",
        "image": image.ref,
        "args": ["conda-store-server", "--config", "/etc/conda-store/conda_store_config.py"],
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT}],
        "volumeMounts": mounts,
        "readinessProbe": {"httpGet": {"path": "/conda-store/api/v1/", "port": PORT}},
        "resources": SERVER_RESOURCES,
    }
    builder: dict[str, Any] = {
        "name": "conda-store-worker",
        "image": image.ref,
        "args": ["conda-store-worker", "--config", "/etc/conda-store/conda_store_config.py"],
        "env": env,
        "volumeMounts": [*mounts, {"name": "environments", "mountPath": ENVIRONMENTS_DIR}],
    }
    resources = _resources(ctx)
    if resources:
        builder["resources"] = resources
    after = (config, *backends.ready, *volumes.ready)
    pod = manifest(
        m,
        "conda_store_server",
        deployment(NAME, [server], node_selector, volumes=[config_volume, shared]),
        after=after,
    )
    manifest(
        m,
        "conda_store_worker",
        deployment(
            WORKER,
            [builder],
            node_selector,
            volumes=[
                config_volume,
                shared,
                {"name": "environments", "configMap": {"name": "conda-store-environments"}},
            ],
        ),
        after=(environments, *after),
    )
    svc = manifest(m, "conda_store_service", service(NAME, {"http": PORT}))
    ingress_route(
        m,
        "conda-store",
        [Route(host("PathPrefix(`/conda-store`)"), NAME, PORT)],
        after=(pod, svc),
    )
    return pod


def _resources(ctx: RenderContext) -> dict[str, Any]:
    """The build worker's container resources, from conda_store.worker.resources."""
    worker = ctx.config.conda_store.worker
    res = worker.resources if worker is not None else None
    if res is None:
        return {}
    limits = {"cpu": res.cpu_limit, "memory": res.mem_limit}
    requests = {"cpu": res.cpu_guarantee, "memory": res.mem_guarantee}
    out: dict[str, Any] = {}
    for key, block in (("limits", limits), ("requests", requests)):
        kept = {k: literal(v) for k, v in block.items() if v is not None}
        if kept:
            out[key] = kept
    return out
