"""Cloud parts of stage 04: load balancer annotations, its address, and DNS automation.

- aws: Traefik's service asks for a Network Load Balancer (layer 4, so TLS still ends at
  Traefik), whose address is a hostname rather than an IP.
- `dns.provider: cloudflare` with `dns.auto_provision: true`: a Cloudflare record for the
  domain pointing at the load balancer (CNAME to an AWS hostname, A to an IP elsewhere),
  as Nebari does after its ingress stage, but as Terraform, so it is planned, re-applied
  only on change and destroyed with the stage. The token comes from CLOUDFLARE_API_TOKEN.
Your `ingress.terraform_overrides.load-balancer-annotations` are merged over these (yours win).
"""

from __future__ import annotations

from typing import Any

from stagegraph.errors import RenderError
from stagegraph.stage import RenderContext
from stagegraph.tfjson import Ref, TerraformModule, literal

SECTIONS = ("dns",)
PINS = ("providers.cloudflare",)

_ANNOTATIONS = {
    "aws": {
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
        "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true",
    },
}


def service_values(ctx: RenderContext) -> dict[str, Any]:
    """Traefik values of the cloud's load balancer (merged under the user's overrides)."""
    annotations = _ANNOTATIONS.get(ctx.provider)
    return {"service": {"annotations": dict(annotations)}} if annotations else {}


def address(ctx: RenderContext, service: Ref, sandbox_value: str) -> str:
    """The load balancer's address: an IP, or the hostname AWS load balancers get."""
    if service.sandbox or ctx.provider not in ("aws", "gcp", "azure"):
        ip: str = service.attr("status[0].load_balancer[0].ingress[0].ip", sandbox=sandbox_value)
        return ip
    base = f"data.kubernetes_service.{service.name}.status[0].load_balancer[0].ingress[0]"
    return f"${{coalesce({base}.ip, {base}.hostname)}}"


def render_dns(ctx: RenderContext, m: TerraformModule, lb_address: str, providers: tuple[str, ...]) -> None:
    dns = ctx.config.dns
    if not dns.auto_provision:
        return
    if dns.provider != "cloudflare":
        raise RenderError(
            f"nebari-config.yaml: dns.provider: only cloudflare is automated; set dns.provider: cloudflare "
            f"or dns.auto_provision: false (got {dns.provider!r})"
        )
    domain = ctx.config.domain
    if not domain or domain.count(".") < 1:
        raise RenderError(
            f"nebari-config.yaml: domain: dns.auto_provision needs a domain such as hub.example.com (got {domain!r})"
        )
    m.require(ctx.pins.version("terraform"), {p: ctx.pins.provider(p) for p in (*providers, "cloudflare")})
    # The token is read from CLOUDFLARE_API_TOKEN by the provider: never in a rendered file.
    m.provider("cloudflare", {})
    zone_name = ".".join(domain.split(".")[-2:])
    zone = m.data("cloudflare_zone", "main", {"filter": {"name": literal(zone_name)}})
    m.resource(
        "cloudflare_dns_record",
        "domain",
        {
            "zone_id": zone.attr("id", sandbox="rehearsal-zone"),
            "name": literal(domain),
            "type": "CNAME" if ctx.provider == "aws" else "A",
            "content": lb_address,
            "ttl": 1,  # 1 = automatic
            "proxied": False,
        },
    )
