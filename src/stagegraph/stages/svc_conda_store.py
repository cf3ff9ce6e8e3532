"""conda-store: builds the configured environments and serves them at /conda-store.

One Deployment runs conda-store-server in standalone mode (API server and build worker in
one pod, SQLite and the celery broker on its own volume of `conda_store.object_storage`),
so no database or broker chart is needed. Environments are written into the shared
conda-store volume (`storage.conda_store`), which every JupyterLab server and Dask worker
mounts under /home/conda/<namespace>. The worker watches the environment files of
`environments` (a ConfigMap) and builds them into `conda_store.default_namespace`.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages import svc_argo_scheduler
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
PORT = 8080
STATE_DIR = "/var/lib/conda-store"
ENVIRONMENTS_DIR = "/opt/environments"

CONFIG = """\
# stagegraph 07: conda-store settings. Values from nebari-config.yaml come from
# settings.json (conda_store.*); conda_store.extra_config is appended below.
import json
import os

with open("/etc/conda-store/settings.json") as handle:
    settings = json.load(handle)

c.CondaStore.store_directory = "/home/conda/"
c.CondaStore.environment_directory = "{store_directory}/{namespace}/envs/{name}"
c.CondaStore.database_url = "sqlite:////var/lib/conda-store/conda-store.sqlite"
c.CondaStore.celery_broker_url = "sqla+sqlite:////var/lib/conda-store/celery-broker.sqlite"
c.CondaStore.celery_results_backend = "db+sqlite:////var/lib/conda-store/celery-results.sqlite"
c.CondaStore.default_namespace = settings["default_namespace"]
c.LocalStorage.storage_path = "/var/lib/conda-store/storage"
c.LocalStorage.storage_url = settings["url"] + "storage"

c.CondaStoreServer.address = "0.0.0.0"
c.CondaStoreServer.port = 8080
c.CondaStoreServer.url_prefix = "/conda-store"
c.CondaStoreServer.standalone = True
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
    state = m.resource(
        "kubernetes_persistent_volume_claim",
        "conda_store_state",
        {
            "metadata": [{"name": "conda-store-state", "namespace": NAMESPACE}],
            "spec": [
                {
                    "access_modes": ["ReadWriteOnce"],
                    "resources": [{"requests": {"storage": literal(section.object_storage)}}],
                }
            ],
            "wait_until_bound": False,
        },
    )
    image = resolve_image(
        ctx, "conda_store", field="conda_store.image", name=section.image, tag=section.image_tag
    )
    container: dict[str, Any] = {
        "name": "conda-store",
        "image": image.ref,
        "args": ["conda-store-server", "--config", "/etc/conda-store/conda_store_config.py"],
        "env": [
            client_secret_env("CONDA_STORE_OAUTH_CLIENT_SECRET", "conda_store"),
            *([svc_argo_scheduler.conda_store_env()] if argo else []),
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/conda-store"},
            {"name": "environments", "mountPath": ENVIRONMENTS_DIR},
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "conda-store", "mountPath": "/home/conda"},
        ],
        "readinessProbe": {"httpGet": {"path": "/conda-store/api/v1/", "port": PORT}},
    }
    resources = _resources(ctx)
    if resources:
        container["resources"] = resources
    pod = manifest(
        m,
        "conda_store_server",
        deployment(
            NAME,
            [container],
            node_selector,
            volumes=[
                {"name": "config", "configMap": {"name": "conda-store-config"}},
                {"name": "environments", "configMap": {"name": "conda-store-environments"}},
                {"name": "state", "persistentVolumeClaim": {"claimName": "conda-store-state"}},
                {"name": "conda-store", "persistentVolumeClaim": {"claimName": volumes.conda_store}},
            ],
            # SQLite on a ReadWriteOnce volume: never two pods at once.
            strategy="Recreate",
        ),
        after=(environments, config, state, *volumes.ready),
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
    """Container resources from conda_store.worker.resources (the build worker runs here)."""
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
