"""07-kubernetes-services: JupyterHub, conda-store, Dask Gateway, Argo, monitoring (stand-in)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stagegraph.stage import RenderContext, Stage, StageIO, Upstream
from stagegraph.stages.common import ClusterNamespaceInputs
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.ingress import IngressOutputs
from stagegraph.stages.keycloak_configuration import KeycloakConfigurationOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.stages.placeholder import placeholder

NAME = "07-kubernetes-services"


class ServicesInputs(ClusterNamespaceInputs):
    domain: str = Field(description="Domain the services answer on.")
    realm_id: str = Field(description="Keycloak realm of the platform.")
    clients: dict[str, str] = Field(description="OAuth client ids by service.")


class ServicesOutputs(StageIO):
    urls: dict[str, str] = Field(description="Public URL of each deployed service.")
    forwardauth_service: str = Field(description="In-cluster address of the forward-auth service.")


def connect(up: Upstream) -> ServicesInputs:
    infra, init = up.get(InfrastructureOutputs), up.get(InitializeOutputs)
    ingress, kc = up.get(IngressOutputs), up.get(KeycloakConfigurationOutputs)
    return ServicesInputs(
        kubeconfig_path=infra.kubeconfig_path,
        kube_context=infra.kube_context,
        namespace=init.namespace,
        domain=ingress.domain,
        realm_id=kc.realm_id,
        clients=kc.clients,
    )


SECTIONS = (
    "argo_workflows",
    "conda_store",
    "default_images",
    "environments",
    "jhub_apps",
    "jupyterhub",
    "jupyterlab",
    "monitoring",
    "profiles",
    "storage",
    "telemetry",
    "theme",
    "domain",
)


def _urls(ctx: RenderContext) -> dict[str, Any]:
    base = f"https://{ctx.config.domain}"
    urls = {
        "jupyterhub": f"{base}/",
        "conda_store": f"{base}/conda-store/",
        "dask_gateway": f"{base}/gateway/",
    }
    if ctx.config.argo_workflows.enabled:
        urls["argo_workflows"] = f"{base}/argo/"
    if ctx.config.monitoring.enabled:
        urls["grafana"] = f"{base}/monitoring/"
    if ctx.config.jhub_apps.enabled:
        urls["jhub_apps"] = f"{base}/services/japps/"
    return urls


render = placeholder(
    NAME,
    "JupyterHub with profiles, theme and idle culler; conda-store with environments; Dask "
    "Gateway; Argo Workflows; Prometheus, Grafana and Loki; jhub-apps.",
    SECTIONS,
    lambda ctx: {
        "urls": _urls(ctx),
        "forwardauth_service": "http://forwardauth-service.${var.namespace}.svc:4180",
    },
)

STAGE = Stage(
    name=NAME,
    description="JupyterHub, conda-store, Dask Gateway, Argo Workflows, monitoring, jhub-apps",
    render=render,
    depends_on=(
        "02-infrastructure",
        "03-kubernetes-initialize",
        "04-kubernetes-ingress",
        "06-kubernetes-keycloak-configuration",
    ),
    config_sections=SECTIONS,
    pins=(
        "terraform",
        "providers.kubernetes",
        "providers.helm",
        "helm_charts.jupyterhub",
        "helm_charts.dask_gateway",
        "helm_charts.argo_workflows",
        "helm_charts.kube_prometheus_stack",
        "helm_charts.loki",
        "helm_charts.promtail",
        "helm_charts.minio",
        "images.jupyterhub",
        "images.jupyterlab",
        "images.dask_worker",
        "images.conda_store",
        "images.nebari_workflow_controller",
    ),
    inputs=ServicesInputs,
    connect=connect,
    outputs=ServicesOutputs,
    mock_outputs=ServicesOutputs(
        urls={"jupyterhub": "https://mock.example.com/"},
        forwardauth_service="http://forwardauth-service.dev.svc:4180",
    ),
    priority=70,
)
