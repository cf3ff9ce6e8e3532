"""04-kubernetes-ingress: Traefik, its LoadBalancer service, and the TLS certificate.

Certificates: self-signed (Traefik's default certificate), lets-encrypt (an ACME
certificate resolver with the configured e-mail and server) or existing (a TLS secret you
created, set as Traefik's default certificate).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stagegraph.stage import RenderContext, Rendered, Stage, StageIO, Upstream
from stagegraph.stages.cloud import ingress as cloud_ingress
from stagegraph.stages.common import ClusterNamespaceInputs, cluster_module, deep_merge, helm_release
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.stages.stage_checks import ingress_check
from stagegraph.tfjson import depends, literal

NAME = "04-kubernetes-ingress"


class IngressOutputs(StageIO):
    load_balancer_address: str = Field(description="IP or hostname of the ingress load balancer.")
    domain: str = Field(description="Domain the platform answers on.")
    certificate_type: str = Field(description="self-signed, lets-encrypt or existing.")


def connect(up: Upstream) -> ClusterNamespaceInputs:
    infra = up.get(InfrastructureOutputs)
    init = up.get(InitializeOutputs)
    return ClusterNamespaceInputs(
        kubeconfig_path=infra.kubeconfig_path,
        kube_context=infra.kube_context,
        namespace=init.namespace,
    )


def traefik_values(ctx: RenderContext) -> dict[str, Any]:
    """Helm values for Traefik, from the certificate, ingress and domain sections."""
    cert = ctx.config.certificate
    image = ctx.pins.image("traefik")
    repository, _, _ = image.image.rpartition("/")
    args: list[str] = ["--providers.kubernetescrd.allowCrossNamespace=true"]
    values: dict[str, Any] = {
        "image": {
            "registry": repository.split("/")[0],
            "repository": image.image.split("/", 1)[1],
            "tag": image.tag,
        },
        "ingressRoute": {"dashboard": {"enabled": False}},
        "service": {"type": "LoadBalancer"},
        "ports": {
            # Chart 34 removed `redirectTo` (its template fails on it); this is the new form.
            "web": {
                "redirections": {"entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}}
            },
            "websecure": {"tls": {"enabled": True}},
            "ssh": {"port": 8022, "expose": {"default": True}, "exposedPort": 8022},
            "minio": {"port": 9080, "expose": {"default": True}, "exposedPort": 9080},
        },
    }
    if cert.type == "lets-encrypt":
        args += [
            f"--certificatesresolvers.letsencrypt.acme.email={cert.acme_email}",
            f"--certificatesresolvers.letsencrypt.acme.caserver={cert.acme_server}",
            "--certificatesresolvers.letsencrypt.acme.tlschallenge=true",
            "--certificatesresolvers.letsencrypt.acme.storage=/data/acme.json",
        ]
        values["persistence"] = {"enabled": True, "path": "/data"}
        values["ports"]["websecure"]["tls"]["certResolver"] = "letsencrypt"
        values["ports"]["websecure"]["tls"]["domains"] = [{"main": ctx.config.domain}]
    elif cert.type == "existing":
        values["tlsStore"] = {"default": {"defaultCertificate": {"secretName": cert.secret_name}}}
    # Nebari's ingress overrides, each where the chart reads it (not as top-level values,
    # which the chart would ignore).
    overrides = ctx.config.ingress.terraform_overrides
    if overrides.load_balancer_ip is not None:
        values["service"]["spec"] = {"loadBalancerIP": overrides.load_balancer_ip}
    if overrides.load_balancer_annotations:
        values["service"]["annotations"] = dict(overrides.load_balancer_annotations)
    values["additionalArguments"] = args + list(overrides.additional_arguments)
    return values


def render(ctx: RenderContext) -> Rendered:
    m = cluster_module(ctx, NAME, ("kubernetes", "helm"))
    # Cloud load balancer settings go under Traefik's values and the user's overrides.
    values = deep_merge(cloud_ingress.service_values(ctx), traefik_values(ctx))
    traefik = helm_release(
        m,
        ctx,
        "traefik",
        "traefik",
        "${var.namespace}",
        literal(values),
        wait=True,
    )
    service = m.data(
        "kubernetes_service",
        "traefik",
        {
            "metadata": [{"name": "traefik", "namespace": "${var.namespace}"}],
            "depends_on": depends(traefik),
        },
    )
    address = cloud_ingress.address(ctx, service, "127.0.0.1")
    cloud_ingress.render_dns(ctx, m, address, ("kubernetes", "helm"))
    m.output("load_balancer_address", address, "Address of the ingress load balancer.")
    m.output("domain", literal(ctx.config.domain), "Domain the platform answers on.")
    m.output("certificate_type", ctx.config.certificate.type, "Kind of TLS certificate.")
    return {"main.tf.json": m.document()}


STAGE = Stage(
    name=NAME,
    description="Traefik ingress, its load balancer and the TLS certificate",
    render=render,
    depends_on=("02-infrastructure", "03-kubernetes-initialize"),
    config_sections=("certificate", "ingress", "domain", *cloud_ingress.SECTIONS),
    pins=(
        "terraform",
        "providers.kubernetes",
        "providers.helm",
        "helm_charts.traefik",
        "images.traefik",
        *cloud_ingress.PINS,
    ),
    inputs=ClusterNamespaceInputs,
    connect=connect,
    outputs=IngressOutputs,
    mock_outputs=IngressOutputs(
        load_balancer_address="127.0.0.1", domain="mock.example.com", certificate_type="self-signed"
    ),
    priority=40,
    check=ingress_check,
)
