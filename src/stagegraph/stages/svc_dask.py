"""Dask Gateway: clusters on demand, sized by the `profiles.dask_worker` profiles.

The gateway authenticates users through JupyterHub with the API token the JupyterHub
chart generates for its `dask-gateway` service (the chart's documented same-namespace
setup), so no token passes through Terraform. The worker profiles are kept structured in
`local.dask_worker_profiles` (one rendered line per value) and handed to the gateway's
options handler as a JSON string inside its `extraConfig`.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.common import helm_release
from stagegraph.stages.svc_images import resolve_image
from stagegraph.stages.svc_kube import NAMESPACE, Route, host, ingress_route
from stagegraph.stages.svc_storage import SharedVolumes
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

RELEASE = "dask-gateway"

OPTIONS = """\
from dask_gateway_server.options import Options, Select, String


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


def options_handler(options, user):
    settings = dict(PROFILES[options.profile])
    # A profile's extra pod/container config adds to the chart's (node selector, conda mount).
    for key in ("worker_extra_pod_config", "worker_extra_container_config"):
        if key in settings:
            settings[key] = merged(dict(c.KubeClusterConfig.get(key, {})), settings[key])
    environment = {}
    if options.conda_environment:
        environment["CONDA_ENVIRONMENT"] = options.conda_environment
        settings["worker_cmd"] = "/opt/conda-run-worker"
        settings["scheduler_cmd"] = "/opt/conda-run-scheduler"
    settings["environment"] = {**settings.get("environment", {}), **environment}
    return settings


c.Backend.cluster_options = Options(
    Select("profile", list(PROFILES), default=next(iter(PROFILES)), label="Cluster Profile"),
    String("conda_environment", default="", label="Conda Environment (namespace/name)"),
    handler=options_handler,
)
"""


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
    m.local(
        "dask_worker_profiles",
        {
            str(literal(name)): literal(profile.model_dump(mode="json", exclude_none=True))
            for name, profile in ctx.config.profiles.dask_worker.items()
        },
    )
    # jsonencode twice: a JSON string literal is a valid Python string literal.
    options = (
        "# stagegraph 07: cluster options from nebari-config.yaml `profiles.dask_worker`.\n"
        "import json\n\n"
        "PROFILES = json.loads(${jsonencode(jsonencode(local.dask_worker_profiles))})\n" + literal(OPTIONS)
    )
    image = resolve_image(
        ctx, "dask_worker", field="default_images.dask_worker", ref=ctx.config.default_images.dask_worker
    )
    # Workers see the conda-store environments where JupyterLab sees them.
    conda_volume = {"name": "conda-store", "persistentVolumeClaim": {"claimName": volumes.conda_store}}
    conda_mount = {"name": "conda-store", "mountPath": "/home/conda", "readOnly": True}
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
                "worker": {
                    "extraPodConfig": {"nodeSelector": nodes["worker"], "volumes": [conda_volume]},
                    "extraContainerConfig": {"volumeMounts": [conda_mount]},
                },
            },
            "extraConfig": {"nebari-options": options},
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
