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
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

NAME = "04-kubernetes-ingress"


class IngressOutputs(StageIO):
    load_balancer_address: str = Field(description="IP or hostname of the ingress load balancer.")
    domain: str = Field(description="Domain the platform answers on.")
    certificate_type: str = Field(description="self-signed, lets-encrypt or existing.")
    certificate_ca: str | None = Field(
        None,
        description="Self-signed: the certificate Traefik serves, base64 PEM, for in-cluster clients "
        "that must verify it (the API server calling admission webhooks); null otherwise.",
    )


#: The Secret of the self-signed certificate stagegraph makes for Traefik.
SELF_SIGNED_SECRET = "ingress-self-signed-certificate"  # noqa: S105 - a secret's name
#: Traefik's Service (the chart names it after the release), reached in-cluster.
TRAEFIK_SERVICE = "traefik"


def in_cluster_host(namespace: str) -> str:
    """The name in-cluster clients reach Traefik by; the self-signed certificate covers it."""
    return f"{TRAEFIK_SERVICE}.{namespace}.svc"


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
            # jupyterhub-sftp (07's IngressRouteTCP on `sftp`).
            "sftp": {"port": 8023, "expose": {"default": True}, "exposedPort": 8023},
            # Dask Gateway's schedulers for clients outside the cluster (07, svc_dask_etc).
            "tcp": {"port": 8786, "expose": {"default": True}, "exposedPort": 8786},
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


def _self_signed(m: TerraformModule, domain: str | None) -> tuple[Ref, str]:
    """A self-signed certificate for the domain and Traefik's in-cluster name.

    Traefik's own default certificate is regenerated at every start, so nothing could
    trust it; this one is stable, and its PEM (public) is an output that in-cluster clients
    verify against. The private key lives in Terraform state and the Secret only.
    """
    key = m.resource("tls_private_key", "ingress", {"algorithm": "RSA", "rsa_bits": 2048})
    names = [in_cluster_host("${var.namespace}"), f"{in_cluster_host('${var.namespace}')}.cluster.local"]
    cert = m.resource(
        "tls_self_signed_cert",
        "ingress",
        {
            "private_key_pem": key.attr("private_key_pem", sandbox="sandbox-private-key"),
            "subject": [{"common_name": literal(domain) if domain else in_cluster_host("${var.namespace}")}],
            "dns_names": [literal(domain), *names] if domain else names,
            "validity_period_hours": 24 * 365 * 5,
            # Its own trust anchor: clients are given this certificate as their CA bundle.
            "is_ca_certificate": True,
            "allowed_uses": ["key_encipherment", "digital_signature", "server_auth", "cert_signing"],
        },
    )
    pem = cert.attr("cert_pem", sandbox="sandbox-certificate")
    secret = m.resource(
        "kubernetes_secret",
        "ingress_certificate",
        {
            "metadata": [{"name": SELF_SIGNED_SECRET, "namespace": "${var.namespace}"}],
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": pem, "tls.key": key.attr("private_key_pem", sandbox="sandbox-private-key")},
        },
    )
    # The sandbox twin has no certificate to read: it encodes its stand-in text the same way.
    pem_expr = '"sandbox-certificate"' if m.sandbox else f"{cert.address}.cert_pem"
    return secret, f"${{base64encode({pem_expr})}}"


def render(ctx: RenderContext) -> Rendered:
    self_signed = ctx.config.certificate.type == "self-signed"
    providers = ("kubernetes", "helm", "tls") if self_signed else ("kubernetes", "helm")
    m = cluster_module(ctx, NAME, providers)
    # Cloud load balancer settings go under Traefik's values and the user's overrides.
    values = deep_merge(cloud_ingress.service_values(ctx), traefik_values(ctx))
    after: list[Ref] = []
    ca: str | None = None
    if self_signed:
        secret, ca = _self_signed(m, ctx.config.domain)
        values["tlsStore"] = {"default": {"defaultCertificate": {"secretName": SELF_SIGNED_SECRET}}}
        after.append(secret)
    traefik = helm_release(
        m,
        ctx,
        "traefik",
        "traefik",
        "${var.namespace}",
        literal(values),
        wait=True,
        **({"depends_on": depends(*after)} if after else {}),
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
    cloud_ingress.render_dns(ctx, m, address, providers)
    m.output("load_balancer_address", address, "Address of the ingress load balancer.")
    m.output("domain", literal(ctx.config.domain), "Domain the platform answers on.")
    m.output("certificate_type", ctx.config.certificate.type, "Kind of TLS certificate.")
    m.output("certificate_ca", ca, "Self-signed certificate Traefik serves (base64 PEM), or null.")
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
        "providers.tls",
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
