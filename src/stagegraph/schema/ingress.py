"""Sections of the ingress stage: domain certificate, DNS and Traefik overrides."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field

from stagegraph.schema.base import TAG_MARK, Section, tag

CERTIFICATE_TYPES = ("self-signed", "lets-encrypt", "existing", "disabled")
CERTIFICATE_TYPE_ERROR = "certificate_type"


class SelfSignedCertificate(Section):
    """Traefik's own self-signed certificate (browsers warn; fine for tests)."""

    type: Literal["self-signed"] = Field("self-signed", description="Kind of TLS certificate.")


class LetsEncryptCertificate(Section):
    """A certificate from an ACME server (Let's Encrypt by default)."""

    type: Literal["lets-encrypt"] = Field(description="Kind of TLS certificate.")
    acme_email: str = Field(
        pattern=r"^[^ @]+@[^ @]+\.[^ @]+$", description="E-mail address registered with the ACME server."
    )
    acme_server: str = Field(
        "https://acme-v02.api.letsencrypt.org/directory",
        description="ACME directory URL (use the staging directory while testing).",
    )
    acme_challenge_type: Literal["tls", "dns"] = Field(
        "tls", description="ACME challenge: tls (TLS-ALPN on port 443) or dns (Cloudflare DNS-01)."
    )


class ExistingCertificate(Section):
    """A TLS secret you created in the namespace yourself."""

    type: Literal["existing"] = Field(description="Kind of TLS certificate.")
    secret_name: str = Field(
        min_length=1, description="Name of the kubernetes.io/tls secret holding the certificate."
    )


class DisabledCertificate(Section):
    """No TLS at the ingress (TLS terminated in front of the cluster)."""

    type: Literal["disabled"] = Field(description="Kind of TLS certificate.")


def _certificate_type(value: Any) -> str | None:
    if isinstance(value, Section):
        kind = getattr(value, "type", None)
    elif isinstance(value, dict):
        # Nebari's default when the key is left out.
        kind = value.get("type", "self-signed")
    else:
        return None
    return TAG_MARK + kind if kind in CERTIFICATE_TYPES else None


Certificate = Annotated[
    Annotated[SelfSignedCertificate, tag("self-signed")]
    | Annotated[LetsEncryptCertificate, tag("lets-encrypt")]
    | Annotated[ExistingCertificate, tag("existing")]
    | Annotated[DisabledCertificate, tag("disabled")],
    Discriminator(
        _certificate_type,
        custom_error_type=CERTIFICATE_TYPE_ERROR,
        custom_error_message="type should be one of self-signed, lets-encrypt, existing, disabled",
    ),
]


class Dns(Section):
    """Automatic DNS records for the domain."""

    provider: str | None = Field(
        None, description="DNS provider that creates the record when auto_provision is on (cloudflare)."
    )
    auto_provision: bool = Field(False, description="Whether to create the DNS record automatically.")


class IngressOverrides(Section):
    """Nebari's ingress overrides: the variables its ingress stage takes, by their names."""

    load_balancer_ip: str | None = Field(
        None,
        alias="load-balancer-ip",
        description="Fixed IP address for the Traefik LoadBalancer service (service.spec.loadBalancerIP).",
    )
    load_balancer_annotations: dict[str, str] = Field(
        default_factory=dict,
        alias="load-balancer-annotations",
        description="Annotations on the Traefik LoadBalancer service (cloud load balancer settings).",
    )
    additional_arguments: list[str] = Field(
        default_factory=list,
        alias="additional-arguments",
        description="Extra command-line arguments for Traefik, after the ones stagegraph sets.",
    )


class Ingress(Section):
    """Traefik ingress settings."""

    terraform_overrides: IngressOverrides = Field(
        default_factory=dict,
        validate_default=True,
        description="Nebari's ingress overrides: load-balancer-ip, load-balancer-annotations, additional-arguments.",
    )
