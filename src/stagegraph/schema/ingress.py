"""Sections of the ingress stage: domain certificate, DNS and Traefik overrides."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Discriminator, Field, model_validator

from stagegraph.schema.base import TAG_MARK, Section, field_problem, tag

CERTIFICATE_TYPES = ("self-signed", "lets-encrypt", "existing", "disabled")
CERTIFICATE_TYPE_ERROR = "certificate_type"


ACME_SERVER = "https://acme-v02.api.letsencrypt.org/directory"


class _CertificateFields(Section):
    """Every field Nebari writes under `certificate:`, whatever the type.

    `nebari init --explicit` writes `secret_name`, `acme_email`, `acme_server` and
    `acme_challenge_type` for every type (null or Nebari's default where unused). They are
    accepted as written; a value a type does not use is refused (it would do nothing).
    """

    secret_name: str | None = Field(None, description="Name of the kubernetes.io/tls secret (type existing).")
    acme_email: str | None = Field(
        None, description="E-mail registered with the ACME server (type lets-encrypt)."
    )
    acme_server: str = Field(ACME_SERVER, description="ACME directory URL (type lets-encrypt).")
    acme_challenge_type: Literal["tls"] = Field(
        "tls",
        description="ACME challenge (type lets-encrypt); tls (TLS-ALPN on port 443) is the one Traefik runs here.",
    )

    #: The fields of the four above that this type uses.
    uses: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _dns_challenge(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("acme_challenge_type") == "dns":
            raise field_problem(
                "acme_challenge_type",
                "dns is not supported: Traefik here answers the TLS challenge only (a DNS challenge "
                "needs a DNS provider's API token, which stagegraph does not manage yet); use tls",
                "dns",
            )
        return data

    @model_validator(mode="after")
    def _unused_fields(self) -> Self:
        defaults = {"acme_server": ACME_SERVER, "acme_challenge_type": "tls"}
        for name in ("secret_name", "acme_email", "acme_server", "acme_challenge_type"):
            value = getattr(self, name)
            if name not in self.uses and value is not None and value != defaults.get(name):
                raise field_problem(
                    name,
                    f"not used with type {getattr(self, 'type', '?')}; remove it "
                    f"(it is read only with type {_USER_OF[name]})",
                    value,
                )
        return self


_USER_OF = {
    "secret_name": "existing",
    "acme_email": "lets-encrypt",
    "acme_server": "lets-encrypt",
    "acme_challenge_type": "lets-encrypt",
}


class SelfSignedCertificate(_CertificateFields):
    """Traefik's own self-signed certificate (browsers warn; fine for tests)."""

    type: Literal["self-signed"] = Field("self-signed", description="Kind of TLS certificate.")


class LetsEncryptCertificate(_CertificateFields):
    """A certificate from an ACME server (Let's Encrypt by default)."""

    uses: ClassVar[tuple[str, ...]] = ("acme_email", "acme_server", "acme_challenge_type")

    type: Literal["lets-encrypt"] = Field(description="Kind of TLS certificate.")
    acme_email: str = Field(
        pattern=r"^[^ @]+@[^ @]+\.[^ @]+$", description="E-mail address registered with the ACME server."
    )
    acme_server: str = Field(
        ACME_SERVER, description="ACME directory URL (use the staging directory while testing)."
    )


class ExistingCertificate(_CertificateFields):
    """A TLS secret you created in the namespace yourself."""

    uses: ClassVar[tuple[str, ...]] = ("secret_name",)

    type: Literal["existing"] = Field(description="Kind of TLS certificate.")
    secret_name: str = Field(
        min_length=1, description="Name of the kubernetes.io/tls secret holding the certificate."
    )


class DisabledCertificate(_CertificateFields):
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
