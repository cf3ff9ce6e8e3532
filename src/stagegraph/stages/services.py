"""07-kubernetes-services: JupyterHub, conda-store, Dask Gateway, Argo Workflows, monitoring.

The stage is assembled from one module per service (svc_*.py), each a pure function that
adds its resources to the module and returns what the others need:

  svc_storage      shared home and conda-store volumes (NFS)
  svc_forwardauth  login check for private routes (08's extensions use it)
  svc_conda_store  conda-store server and worker, and the configured environments
  svc_conda_store_backends  its PostgreSQL, Redis (svc_postgres, svc_redis) and MinIO
  svc_jupyterhub   JupyterHub, profiles (svc_profiles), theme, idle culler, lab files,
                   and the users' secrets of their groups (user_secrets)
  svc_jhub_apps    jhub-apps, when enabled (hub configuration)
  svc_dask         Dask Gateway with the dask_worker profiles
  svc_dask_etc     users' dask-etc configuration (Gateway() with no arguments), TCP route 8786
  svc_argo_scheduler  JupyterLab's scheduler on Argo, with a read-only conda-store token
  svc_lab_home     skeleton files, IPython settings and page config of every server
  svc_ssh          jupyterhub-ssh (8022) and jupyterhub-sftp (8023) with their TCP routes
  svc_roles        what 06's roles and scopes mean to JupyterHub and conda-store
  svc_argo         Argo Workflows and the workflow controller, when enabled
  svc_monitoring   Prometheus, Grafana, Loki, Promtail, MinIO, when enabled
  svc_scrape       the extra scrape jobs (hub, conda-store, Keycloak, Traefik, Kuberhealthy)
  svc_dashboards   the Grafana dashboards, as ConfigMaps for Grafana's sidecar

The same render serves local and existing clusters (nothing here is cloud-specific) and,
through `TerraformModule(sandbox=True)`, the sandbox.
"""

from __future__ import annotations

from pydantic import Field

from stagegraph.stage import RenderContext, Rendered, Stage, StageIO, Upstream
from stagegraph.stages.common import (
    ClusterNamespaceInputs,
    NodeSelector,
    cluster_module,
    require_rendered_provider,
)
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.ingress import IngressOutputs
from stagegraph.stages.keycloak import KeycloakOutputs
from stagegraph.stages.keycloak_configuration import KeycloakConfigurationOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.stages.stage_checks import hub_check
from stagegraph.stages.svc_addresses import internal_url
from stagegraph.stages.svc_argo import argo_workflows, hub_settings
from stagegraph.stages.svc_argo_scheduler import scheduler_token
from stagegraph.stages.svc_conda_store import NAME as CONDA_STORE_SERVICE
from stagegraph.stages.svc_conda_store import PORT as CONDA_STORE_PORT
from stagegraph.stages.svc_conda_store import conda_store
from stagegraph.stages.svc_dashboards import dashboard_config_maps
from stagegraph.stages.svc_dask import dask_gateway
from stagegraph.stages.svc_dask_etc import dask_etc, dask_tcp_route
from stagegraph.stages.svc_forwardauth import forward_auth
from stagegraph.stages.svc_jhub_apps import jhub_apps
from stagegraph.stages.svc_jupyterhub import HubParts, gallery_sensitive_inputs, jupyterhub
from stagegraph.stages.svc_kube import NAMESPACE, node_selector_locals
from stagegraph.stages.svc_lab_home import lab_home
from stagegraph.stages.svc_monitoring import monitoring
from stagegraph.stages.svc_profiles import group_overrides
from stagegraph.stages.svc_scrape import hub_metrics_access, stack_values
from stagegraph.stages.svc_ssh import jupyterhub_ssh
from stagegraph.stages.svc_storage import shared_storage
from stagegraph.stages.user_secrets import user_secrets_input

NAME = "07-kubernetes-services"


class ServicesInputs(ClusterNamespaceInputs):
    domain: str = Field(description="Domain the services answer on.")
    certificate_type: str = Field(description="Certificate the ingress serves (self-signed, ...).")
    certificate_ca: str | None = Field(
        None,
        description="Self-signed ingress certificate (base64 PEM) the API server verifies webhooks with.",
    )
    node_selectors: dict[str, NodeSelector] = Field(
        description="Node selectors of the general, user and worker node groups."
    )
    registry_pull_secret: str | None = Field(
        None, description="Image pull secret of the external container registry, if any."
    )
    keycloak_url: str = Field(description="Public URL of Keycloak.")
    keycloak_internal_url: str = Field(description="In-cluster URL of Keycloak.")
    realm_id: str = Field(description="Keycloak realm of the platform.")
    groups: list[str] = Field(description="Keycloak groups allowed to log in to JupyterHub.")
    clients: dict[str, str] = Field(description="OAuth client ids by service.")
    nfs_endpoint: str | None = Field(
        None, description="EFS file system for the home volume (aws, storage.type efs; null elsewhere)."
    )


class ServicesOutputs(StageIO):
    urls: dict[str, str] = Field(description="Public URL of each deployed service.")
    internal_urls: dict[str, str] = Field(
        default_factory=dict, description="In-cluster URL of each deployed service (same content as urls)."
    )
    forwardauth_service: str = Field(description="In-cluster address of the forward-auth service.")
    forwardauth_middleware: str = Field(
        "forwardauth", description="Traefik Middleware (in the platform namespace) that requires a login."
    )


def connect(up: Upstream) -> ServicesInputs:
    infra, init = up.get(InfrastructureOutputs), up.get(InitializeOutputs)
    ingress, keycloak = up.get(IngressOutputs), up.get(KeycloakOutputs)
    kc = up.get(KeycloakConfigurationOutputs)
    return ServicesInputs(
        kubeconfig_path=infra.kubeconfig_path,
        kube_context=infra.kube_context,
        namespace=init.namespace,
        domain=ingress.domain,
        certificate_type=ingress.certificate_type,
        certificate_ca=ingress.certificate_ca,
        node_selectors=infra.node_selectors,
        registry_pull_secret=init.registry_pull_secret,
        keycloak_url=keycloak.keycloak_url,
        keycloak_internal_url=keycloak.internal_url,
        realm_id=kc.realm_id,
        groups=kc.groups,
        clients=kc.clients,
        nfs_endpoint=infra.nfs_endpoint,
    )


#: Exactly what the render reads (monitoring.healthchecks.enabled: the kuberhealthy scrape job).
SECTIONS = (
    "argo_workflows",
    "certificate.type",
    "conda_store",
    "default_images",
    "environments",
    "jhub_apps",
    "jupyterhub",
    "jupyterlab",
    "monitoring.enabled",
    "monitoring.healthchecks.enabled",
    "monitoring.minio_enabled",
    "monitoring.overrides",
    "nebari_version",
    "profiles",
    "secrets",
    "security.roles",
    "storage",
    "telemetry",
    "theme",
)


def render(ctx: RenderContext) -> Rendered:
    require_rendered_provider(ctx, NAME)
    m = cluster_module(ctx, NAME, ("kubernetes", "helm", "kubectl", "random", "tls"))
    nodes = node_selector_locals(m)
    volumes = shared_storage(ctx, m, nodes["general"])
    auth = forward_auth(ctx, m, nodes["general"])
    conda_store(ctx, m, nodes["general"], volumes)
    argo_enabled = ctx.config.argo_workflows.enabled
    argo_hub = hub_settings(argo_enabled)
    if argo_enabled:
        argo_hub |= scheduler_token(m, CONDA_STORE_SERVICE, CONDA_STORE_PORT).hub_settings
    dask_config = dask_etc(m)
    home = lab_home(ctx, m)
    parts: list[HubParts] = []
    if ctx.config.jhub_apps.enabled:
        parts.append(jhub_apps(ctx, m))
    if ctx.config.monitoring.enabled:
        parts.append(hub_metrics_access(m))
    hub = jupyterhub(
        ctx,
        m,
        nodes,
        volumes,
        parts,
        group_overrides=group_overrides(ctx, m, NAMESPACE),
        argo=argo_hub,
        extra_mounts=[(dask_config.mount, dask_config.config_map), *home.mounts],
        skel=home.skel,
    )
    dask_tcp_route(m, dask_gateway(ctx, m, nodes, volumes, hub.release, hub_prefix=hub.prefix))
    jupyterhub_ssh(ctx, m, nodes["general"], volumes.home, hub.release)
    urls = {
        "jupyterhub": "https://${var.domain}/",
        "conda_store": "https://${var.domain}/conda-store/",
        "dask_gateway": "https://${var.domain}/gateway/",
        # 05's Keycloak, listed so that 11's health checks find it beside the others.
        "keycloak": "https://${var.domain}/auth/",
    }
    if argo_enabled:
        argo_workflows(ctx, m, nodes)
        urls["argo_workflows"] = "https://${var.domain}/argo/"
    if ctx.config.monitoring.enabled:
        monitoring(ctx, m, nodes, stack_values(ctx))
        dashboard_config_maps(m)
        urls["grafana"] = "https://${var.domain}/monitoring/"
    if ctx.config.jhub_apps.enabled:
        urls["jhub_apps"] = "https://${var.domain}/services/japps/"
    m.output("urls", dict(sorted(urls.items())), "Public URL of each deployed service.")
    m.output(
        "internal_urls",
        {name: internal_url(name, NAMESPACE) for name in sorted(urls)},
        "In-cluster URL of each deployed service.",
    )
    m.output("forwardauth_service", auth.address, "Forward-auth address for Traefik forwardAuth middlewares.")
    m.output("forwardauth_middleware", auth.middleware, "Traefik Middleware that requires a login.")
    return {"main.tf.json": m.document()}


STAGE = Stage(
    name=NAME,
    description="JupyterHub, conda-store, Dask Gateway, Argo Workflows, monitoring, jhub-apps",
    render=render,
    depends_on=(
        "02-infrastructure",
        "03-kubernetes-initialize",
        "04-kubernetes-ingress",
        "05-kubernetes-keycloak",
        "06-kubernetes-keycloak-configuration",
    ),
    config_sections=SECTIONS,
    pins=(
        "terraform",
        "providers.kubernetes",
        "providers.helm",
        "providers.kubectl",
        "providers.random",
        "providers.tls",
        "helm_charts.jupyterhub",
        "helm_charts.jupyterhub_next",
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
        "images.postgres",
        "images.redis",
        "images.nebari_workflow_controller",
        "images.nfs_server",
        "images.oauth2_proxy",
        "images.jupyterhub_ssh",
        "images.jupyterhub_sftp",
    ),
    inputs=ServicesInputs,
    connect=connect,
    outputs=ServicesOutputs,
    mock_outputs=ServicesOutputs(
        urls={"jupyterhub": "https://mock.example.com/"},
        forwardauth_service="http://forwardauth-service.dev.svc:4180",
    ),
    sensitive=(*gallery_sensitive_inputs(), user_secrets_input()),
    priority=70,
    check=hub_check,
)
