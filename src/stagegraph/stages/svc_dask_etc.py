"""Dask for every user: the `dask-etc` configuration and the gateway's TCP route.

Nebari mounts a `dask-etc` ConfigMap at /etc/dask in every JupyterLab server; /etc/dask is
on dask.config's search path, so `dask_gateway.Gateway()` finds the gateway with no
arguments and authenticates with the server's JupyterHub token (auth type `jupyterhub`).

Where this differs from Nebari, on purpose: the `address` and `proxy-address` users'
servers get are the in-cluster ones (the chart's Traefik service), not the public domain,
so a notebook reaches its scheduler without leaving the cluster (no hairpin through the
load balancer, no dependence on public DNS or a self-signed certificate). The public route
stays for clients outside the cluster: Traefik's `tcp` entrypoint on port 8786 (04) forwards
TCP to the gateway's proxy (an IngressRouteTCP), and
`public-address` is what the dashboard links show.

The cluster options a user sees (`Gateway().cluster_options()`) come from the gateway's
options handler, built from `profiles.dask_worker` in svc_dask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stagegraph.stages.svc_kube import NAMESPACE, TRAEFIK_API, manifest, metadata
from stagegraph.tfjson import Ref, TerraformModule

NAME = "dask-etc"
MOUNT_PATH = "/etc/dask"
#: Traefik entrypoint and port of the gateway's scheduler traffic (04 opens it).
ENTRYPOINT = "tcp"
PORT = 8786
#: The dask-gateway chart names its proxy Service `traefik-<release>`; it serves the API
#: under the gateway prefix and schedulers by TLS SNI on the same port.
PROXY_SERVICE = "traefik-dask-gateway"
PROXY_PORT = 80


@dataclass(frozen=True)
class DaskEtc:
    mount: dict[str, str]
    config_map: Ref


def dask_client_config() -> dict[str, Any]:
    """The `gateway` section of dask's configuration, as dask_gateway reads it."""
    proxy = f"{PROXY_SERVICE}.{NAMESPACE}"
    return {
        "gateway": {
            "address": f"http://{proxy}:{PROXY_PORT}/gateway",
            "public-address": "https://${var.domain}/gateway",
            "proxy-address": f"gateway://{proxy}:{PROXY_PORT}",
            "auth": {"type": "jupyterhub"},
        }
    }


def dask_etc(m: TerraformModule) -> DaskEtc:
    """The ConfigMap every JupyterLab server mounts at /etc/dask."""
    m.local("dask_etc_gateway", dask_client_config())
    ref = m.resource(
        "kubernetes_config_map",
        "dask_etc",
        {
            "metadata": [{"name": NAME, "namespace": NAMESPACE}],
            "data": {"gateway.yaml": "${yamlencode(local.dask_etc_gateway)}"},
        },
    )
    return DaskEtc({"name": NAME, "kind": "configmap", "mount_path": MOUNT_PATH}, ref)


def dask_tcp_route(m: TerraformModule, release: Ref) -> Ref:
    """Port 8786 of the platform's load balancer -> the gateway's proxy (TLS passthrough)."""
    body = {
        "apiVersion": TRAEFIK_API,
        "kind": "IngressRouteTCP",
        "metadata": metadata("dask-gateway-tcp"),
        "spec": {
            "entryPoints": [ENTRYPOINT],
            # Schedulers speak TLS with their cluster name as SNI and the gateway's own proxy
            # picks the scheduler by it: Traefik forwards the bytes untouched (no `tls`
            # block, so `HostSNI(*)` is a plain TCP route, as Nebari's SSH routes).
            "routes": [{"match": "HostSNI(`*`)", "services": [{"name": PROXY_SERVICE, "port": PROXY_PORT}]}],
        },
    }
    return manifest(m, "route_dask_gateway_tcp", body, after=(release,))
