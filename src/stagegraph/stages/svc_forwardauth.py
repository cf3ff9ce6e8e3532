"""Forward-auth: one login check that Traefik runs before any private route.

An oauth2-proxy Deployment answers Traefik's forwardAuth calls: 202 for a signed-in user
(with X-Auth-Request-User/Email headers), otherwise a redirect to Keycloak and back through
`/oauth2/callback`. 08 points its private extensions at `forwardauth_service`; services of
this stage and plugins can reuse the `forwardauth` Middleware.
"""

from __future__ import annotations

from dataclasses import dataclass

from stagegraph.stage import RenderContext
from stagegraph.stages.svc_images import resolve_image
from stagegraph.stages.svc_kube import (
    Route,
    deployment,
    host,
    ingress_route,
    manifest,
    middleware,
    opaque_secret,
    random_secret,
    secret_env,
    service,
)
from stagegraph.stages.svc_oauth import client_id, client_secret_env, insecure_tls, realm_url
from stagegraph.tfjson import TerraformModule

NAME = "forwardauth"
SERVICE = "forwardauth-service"
PORT = 4180
MIDDLEWARE = "forwardauth"
COOKIE_SECRET = "forwardauth-cookie"  # noqa: S105 - the name of a generated secret


@dataclass(frozen=True)
class ForwardAuth:
    address: str
    middleware: str


def forward_auth(ctx: RenderContext, m: TerraformModule, node_selector: str) -> ForwardAuth:
    # oauth2-proxy wants a 32-byte cookie secret; 32 alphanumerics are 32 bytes.
    cookie = opaque_secret(m, COOKIE_SECRET, {"cookie_secret": random_secret(m, "forwardauth_cookie")})
    image = resolve_image(ctx, "oauth2_proxy", field="images.oauth2_proxy")
    args = [
        "--provider=keycloak-oidc",
        f"--oidc-issuer-url={realm_url()}",
        f"--http-address=0.0.0.0:{PORT}",
        "--upstream=static://202",
        "--reverse-proxy=true",
        "--set-xauthrequest=true",
        "--skip-provider-button=true",
        "--email-domain=*",
        "--redirect-url=https://${var.domain}/oauth2/callback",
        "--whitelist-domain=${var.domain}",
        "--cookie-name=_nebari_forwardauth",
        f"--ssl-insecure-skip-verify={insecure_tls()}",
    ]
    container = {
        "name": "oauth2-proxy",
        "image": image.ref,
        "args": args,
        "env": [
            {"name": "OAUTH2_PROXY_CLIENT_ID", "value": client_id("forwardauth")},
            client_secret_env("OAUTH2_PROXY_CLIENT_SECRET", "forwardauth"),
            secret_env("OAUTH2_PROXY_COOKIE_SECRET", COOKIE_SECRET, "cookie_secret"),
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
    }
    pod = manifest(m, "forwardauth_deployment", deployment(NAME, [container], node_selector), after=(cookie,))
    svc = manifest(m, "forwardauth_service", service(SERVICE, {"http": PORT}, app=NAME))
    address = f"http://{SERVICE}.${{var.namespace}}.svc:{PORT}"
    middleware(
        m,
        MIDDLEWARE,
        {
            "forwardAuth": {
                "address": address,
                "trustForwardHeader": True,
                "authResponseHeaders": ["X-Auth-Request-User", "X-Auth-Request-Email", "Authorization"],
            }
        },
    )
    ingress_route(
        m,
        "forwardauth",
        [Route(host("PathPrefix(`/oauth2`)"), SERVICE, PORT)],
        after=(pod, svc),
    )
    return ForwardAuth(address=address, middleware=MIDDLEWARE)
