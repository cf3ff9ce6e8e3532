"""How 07's services log in through Keycloak: client ids, client secrets, OIDC endpoints.

The contract with 06-kubernetes-keycloak-configuration:
- client ids come in as the `clients` input (service -> client id); a service 06 does not
  list falls back to Nebari's conventional id below, so plans against mocked outputs work;
- the client SECRETS never enter this stage's Terraform: 06 writes each one into the
  Kubernetes secret `keycloak-client-<service>` (keys `client_id` and `client_secret`) in
  the platform namespace, and the pods read it through `secretKeyRef`. So no secret is an
  output, a variable, a rendered literal or even a value in this stage's state.
- groups reach the services in the `groups` claim without a leading slash; the roles of a
  client in the `roles` claim; profile grants (access: keycloak) in `jupyterlab_profiles`.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stages.svc_kube import secret_env

#: Service key in 06's `clients` output -> Nebari's conventional client id.
CLIENT_IDS: dict[str, str] = {
    "argo": "argo-server-sso",
    "conda_store": "conda_store",
    "forwardauth": "forwardauth",
    "grafana": "grafana",
    "jupyterhub": "jupyterhub",
}
CLIENT_ID_KEY = "client_id"
CLIENT_SECRET_KEY = "client_secret"  # noqa: S105 - a key name inside a secret, not a value


def client_id(service: str) -> str:
    """The client id expression: 06's value, or the conventional id."""
    return f'${{lookup(var.clients, "{service}", "{CLIENT_IDS[service]}")}}'


def client_secret_name(service: str) -> str:
    """Name of the Kubernetes secret 06 creates for a service's OAuth client."""
    return f"keycloak-client-{service.replace('_', '-')}"


def client_secret_env(env: str, service: str) -> dict[str, Any]:
    return secret_env(env, client_secret_name(service), CLIENT_SECRET_KEY)


def realm_url() -> str:
    """Public realm URL (what browsers and token issuers see)."""
    return "${var.keycloak_url}/realms/${var.realm_id}"


def internal_realm_url() -> str:
    """In-cluster realm URL: server-to-server calls skip the ingress and its certificate."""
    return "${var.keycloak_internal_url}/realms/${var.realm_id}"


def endpoints() -> dict[str, str]:
    """OIDC endpoints: authorize in the browser, token and userinfo inside the cluster."""
    oidc = "protocol/openid-connect"
    return {
        "authorize": f"{realm_url()}/{oidc}/auth",
        "token": f"{internal_realm_url()}/{oidc}/token",
        "userinfo": f"{internal_realm_url()}/{oidc}/userinfo",
        "logout": f"{realm_url()}/{oidc}/logout",
        "issuer": realm_url(),
    }


def insecure_tls() -> str:
    """True when the ingress serves Traefik's self-signed certificate (04's output)."""
    return '${var.certificate_type == "self-signed"}'
