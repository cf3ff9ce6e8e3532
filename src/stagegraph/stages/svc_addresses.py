"""Where each service of 07 answers inside the cluster: one table for 07 and its readers.

07 publishes `internal_urls` from this table (typed output), and 11's health checks probe
these addresses when the public certificate is self-signed (a probe through the public
URL would fail TLS verification). Each entry is the Service and port that the service's
IngressRoute sends its public path to, and the path the backend sees (after any
strip-prefix middleware), so an in-cluster probe reaches what a user's browser reaches.
"""

from __future__ import annotations

from stagegraph.stages.keycloak import SERVICE as KEYCLOAK_SERVICE

#: service -> (Kubernetes Service, port, path on it that answers the public URL's root).
INTERNAL: dict[str, tuple[str, int, str]] = {
    "jupyterhub": ("proxy-public", 80, "/"),
    "conda_store": ("conda-store-server", 8080, "/conda-store/"),
    "dask_gateway": ("traefik-dask-gateway", 80, "/gateway/"),
    # argo-server's route strips /argo (argo-stripprefix).
    "argo_workflows": ("argo-workflows-server", 2746, "/"),
    "grafana": ("kube-prometheus-stack-grafana", 80, "/monitoring/"),
    "jhub_apps": ("proxy-public", 80, "/services/japps/"),
    # 05's Keycloak (keycloakx names its Service <release>-keycloakx-http), served under /auth.
    "keycloak": (KEYCLOAK_SERVICE, 80, "/auth/"),
}


def internal_url(service: str, namespace: str) -> str:
    name, port, path = INTERNAL[service]
    return f"http://{name}.{namespace}.svc:{port}{path}"
