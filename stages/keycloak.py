"""05-kubernetes-keycloak: Keycloak from its Helm chart (stand-in until written)."""

from __future__ import annotations

from pydantic import Field

from stagegraph.stage import SensitiveInput, Stage, StageIO, Upstream
from stagegraph.stages.common import ClusterNamespaceInputs
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.ingress import IngressOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.stages.placeholder import placeholder

NAME = "05-kubernetes-keycloak"


class KeycloakInputs(ClusterNamespaceInputs):
    domain: str = Field(description="Domain Keycloak is served under (/auth).")


class KeycloakOutputs(StageIO):
    keycloak_url: str = Field(description="Public URL of Keycloak.")
    internal_url: str = Field(description="In-cluster URL of Keycloak.")
    admin_username: str = Field(description="Name of the root admin.")
    admin_credentials_secret: str = Field(
        description="Kubernetes secret holding the root admin password (a reference, not the value)."
    )


def connect(up: Upstream) -> KeycloakInputs:
    infra, init, ingress = up.get(InfrastructureOutputs), up.get(InitializeOutputs), up.get(IngressOutputs)
    return KeycloakInputs(
        kubeconfig_path=infra.kubeconfig_path,
        kube_context=infra.kube_context,
        namespace=init.namespace,
        domain=ingress.domain,
    )


SECTIONS = ("domain", "security.keycloak")

render = placeholder(
    NAME,
    "Keycloak from the keycloakx chart with the initial root password as a sensitive value.",
    SECTIONS,
    lambda ctx: {
        "keycloak_url": f"https://{ctx.config.domain}/auth",
        "internal_url": "http://keycloak-http.${var.namespace}.svc:80/auth",
        "admin_username": "root",
        "admin_credentials_secret": "keycloak-admin",
    },
)

STAGE = Stage(
    name=NAME,
    description="Keycloak identity provider (Helm), root password passed as a sensitive value",
    render=render,
    depends_on=("02-infrastructure", "03-kubernetes-initialize", "04-kubernetes-ingress"),
    config_sections=SECTIONS,
    pins=("terraform", "providers.helm", "helm_charts.keycloakx", "images.keycloak"),
    inputs=KeycloakInputs,
    connect=connect,
    outputs=KeycloakOutputs,
    mock_outputs=KeycloakOutputs(
        keycloak_url="https://mock.example.com/auth",
        internal_url="http://keycloak-http.dev.svc:80/auth",
        admin_username="root",
        admin_credentials_secret="keycloak-admin",  # noqa: S106 - a secret name, not a value
    ),
    sensitive=(
        SensitiveInput(
            "keycloak_root_password",
            "security.keycloak.initial_root_password",
            "Initial password of Keycloak's root user.",
        ),
    ),
    priority=50,
)
