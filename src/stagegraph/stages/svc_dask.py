"""Dask Gateway: clusters on demand, sized by the `profiles.dask_worker` profiles.

The gateway authenticates users through JupyterHub with the API token the JupyterHub
chart generates for its `dask-gateway` service (the chart's documented same-namespace
setup), so no token passes through Terraform. What the gateway's scripts read (the worker
profiles, what each dask-gateway role grants, the conda-store layout) is kept structured in
`local.dask_gateway_settings` (one rendered line per value) and handed to the scripts as a
JSON string inside the chart's `extraConfig`: the scripts themselves are fixed text. Who may
use the gateway: svc_dask_access.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.common import helm_release
from stagegraph.stages.svc_dask_access import ACCESS_SCRIPT, dask_roles
from stagegraph.stages.svc_images import resolve_image
from stagegraph.stages.svc_kube import NAMESPACE, Route, host, ingress_route
from stagegraph.stages.svc_storage import SharedVolumes
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

RELEASE = "dask-gateway"

#: Where a conda-store environment is on the shared volume as workers mount it; conda-store
#: builds `{store_directory}/{namespace}/envs/{name}` (svc_conda_store) on the same volume.
CONDA_MOUNT = "/home/conda"
CONDA_ENVIRONMENT_PATH = CONDA_MOUNT + "/{namespace}/envs/{name}"

OPTIONS = """\
# stagegraph 07: the cluster options each user sees, from nebari-config.yaml
# `profiles.dask_worker`: a profile with `users` or `groups` is shown to those users and the
# members of those groups only. A conda-store environment is named `namespace/name`, from
# the namespaces the user's JupyterLab mounts (own, default, global, own groups).
from dask_gateway_server.options import Mapping, Options, Select, String

PROFILES = SETTINGS["profiles"]
CONDA = SETTINGS["conda"]


def merged(base, extra):
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merged(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = old + value
        else:
            out[key] = value
    return out


def sees(profile, user):
    users, groups = profile.get("users"), profile.get("groups")
    if users is None and groups is None:
        return True
    return user.name in (users or []) or bool(set(groups or []) & set(user.groups))


def conda_namespaces(user):
    return {user.name, CONDA["default_namespace"], "global", *user.groups}


def options_handler(options, user):
    name = options.get("profile")
    profile = PROFILES[name] if name is not None else {}
    settings = {k: v for k, v in profile.items() if k not in ("users", "groups")}
    environment = dict(options.environment_vars)
    extra = {}
    if options.conda_environment:
        namespace, _, env = options.conda_environment.partition("/")
        if not env or "/" in env or namespace not in conda_namespaces(user):
            allowed = ", ".join(sorted(conda_namespaces(user)))
            raise ValueError(
                "conda_environment %r: write namespace/name with a namespace of yours (%s)"
                % (options.conda_environment, allowed)
            )
        environment["CONDA_ENVIRONMENT"] = CONDA["environment_path"].format(namespace=namespace, name=env)
        settings["worker_cmd"] = "/opt/conda-run-worker"
        settings["scheduler_cmd"] = "/opt/conda-run-scheduler"
        # Scheduler and workers mount that namespace only, read-only, where conda-store built it.
        volume = {"name": "conda-store", "persistentVolumeClaim": {"claimName": CONDA["claim"]}}
        mount = {
            "name": "conda-store",
            "mountPath": CONDA["mount"] + "/" + namespace,
            "subPath": namespace,
            "readOnly": True,
        }
        for part in ("scheduler", "worker"):
            extra[part + "_extra_pod_config"] = {"volumes": [volume]}
            extra[part + "_extra_container_config"] = {"volumeMounts": [mount]}
    # Extra pod/container config adds to the chart's (node selectors) rather than replacing it.
    for part in ("scheduler", "worker"):
        for kind in ("pod", "container"):
            key = "%s_extra_%s_config" % (part, kind)
            if key in settings or key in extra:
                chart = dict(c.KubeClusterConfig.get(key, {}))
                settings[key] = merged(merged(chart, settings.get(key, {})), extra.get(key, {}))
    settings["environment"] = {**settings.get("environment", {}), **environment}
    return settings


def user_options(user):
    fields = []
    visible = [name for name in SETTINGS["profile_order"] if sees(PROFILES[name], user)]
    if visible:  # with none visible the chart's sizes apply
        fields.append(Select("profile", visible, default=visible[0], label="Cluster Profile"))
    fields.append(String("conda_environment", default="", label="Conda Environment (namespace/name)"))
    fields.append(Mapping("environment_vars", {}, label="Environment Variables"))
    return Options(*fields, handler=options_handler)


c.Backend.cluster_options = user_options
"""


def gateway_settings(ctx: RenderContext, claim: str) -> dict[str, Any]:
    """What the gateway's scripts read: profiles, role access, conda-store layout."""
    return {
        "profiles": {
            str(literal(name)): literal(profile.model_dump(mode="json", exclude_none=True))
            for name, profile in ctx.config.profiles.dask_worker.items()
        },
        # Terraform's jsonencode sorts object keys: the config's order (first is the default)
        # travels as a list.
        "profile_order": [str(literal(name)) for name in ctx.config.profiles.dask_worker],
        "roles": dask_roles(ctx),
        "conda": {
            "default_namespace": literal(ctx.config.conda_store.default_namespace),
            "environment_path": CONDA_ENVIRONMENT_PATH,
            "mount": CONDA_MOUNT,
            "claim": claim,
        },
    }


def _script(body: str) -> str:
    # jsonencode twice: a JSON string literal is a valid Python string literal.
    return (
        "import json\n\n"
        "SETTINGS = json.loads(${jsonencode(jsonencode(local.dask_gateway_settings))})\n" + str(literal(body))
    )


def dask_gateway(
    ctx: RenderContext,
    m: TerraformModule,
    nodes: dict[str, str],
    volumes: SharedVolumes,
    after: Ref,
    hub_prefix: str = "",
) -> Ref:
    """Dask Gateway, authenticating against the hub that serves / (`hub_prefix` names its objects)."""
    hub = f"{hub_prefix}-hub" if hub_prefix else "hub"
    m.local("dask_gateway_settings", gateway_settings(ctx, volumes.conda_store))
    image = resolve_image(
        ctx, "dask_worker", field="default_images.dask_worker", ref=ctx.config.default_images.dask_worker
    )
    values: dict[str, Any] = {
        "gateway": {
            "prefix": "/gateway",
            "nodeSelector": nodes["general"],
            "auth": {
                "type": "jupyterhub",
                "jupyterhub": {
                    "apiUrl": f"http://{hub}.${{var.namespace}}:8081/hub/api",
                    "apiTokenFromSecretName": hub,
                    "apiTokenFromSecretKey": "hub.services.dask-gateway.apiToken",
                },
            },
            "backend": {
                "image": image.helm(),
                "scheduler": {"extraPodConfig": {"nodeSelector": nodes["general"]}},
                "worker": {"extraPodConfig": {"nodeSelector": nodes["worker"]}},
            },
            "extraConfig": {"nebari-access": _script(ACCESS_SCRIPT), "nebari-options": _script(OPTIONS)},
        },
        "controller": {"nodeSelector": nodes["general"]},
        "traefik": {"nodeSelector": nodes["general"], "service": {"type": "ClusterIP"}},
    }
    release: Ref = helm_release(
        m,
        ctx,
        RELEASE,
        "dask_gateway",
        NAMESPACE,
        values,
        # The gateway reads the token the JupyterHub chart generates: install after it.
        depends_on=depends(after, *volumes.ready),
    )
    ingress_route(
        m,
        "dask-gateway",
        [Route(host("PathPrefix(`/gateway`)"), f"traefik-{RELEASE}", 80)],
        after=(release,),
    )
    return release
