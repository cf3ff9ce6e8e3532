"""jhub-apps: launch dashboards and apps from the JupyterHub home page.

jhub-apps ships in the Nebari JupyterHub image; enabling it is hub configuration (a hub
service and its JWT secret), so this module adds to the JupyterHub chart values rather
than installing a release of its own. `jhub_apps.overrides` become `JAppsConfig` traits.
"""

from __future__ import annotations

from stagegraph.stage import RenderContext
from stagegraph.stages import svc_hub_scripts
from stagegraph.stages.svc_jupyterhub import HubParts
from stagegraph.stages.svc_kube import opaque_secret, random_secret, secret_env
from stagegraph.tfjson import TerraformModule, literal

SECRET = "jhub-apps-secrets"  # noqa: S105 - the name of a generated secret
JWT_ENV = "JHUB_APP_JWT_SECRET_KEY"


def launcher_links(ctx: RenderContext) -> list[dict[str, str]]:
    """The services the launcher's home page links to, with Nebari's names (the deployed ones)."""
    links = [{"name": "Environments", "url": "/conda-store"}]
    if ctx.config.argo_workflows.enabled:
        links.append({"name": "Argo", "url": "/argo"})
    links.append({"name": "Users", "url": "${var.keycloak_url}/admin/${var.realm_id}/console/"})
    if ctx.config.monitoring.enabled:
        links.append({"name": "Monitoring", "url": "/monitoring"})
    return links


def jhub_apps(ctx: RenderContext, m: TerraformModule) -> HubParts:
    section = ctx.config.jhub_apps
    secret = opaque_secret(m, SECRET, {"jwt_secret_key": random_secret(m, "jhub_apps_jwt")})
    env = secret_env(JWT_ENV, SECRET, "jwt_secret_key")
    values = {
        "hub": {
            "extraEnv": {JWT_ENV: {"valueFrom": env["valueFrom"]}},
            "extraConfig": {"05-jhub-apps.py": literal(svc_hub_scripts.JHUB_APPS)},
        },
        "custom": {
            "jhub-apps": {
                "bind_url": "https://${var.domain}",
                "overrides": literal(dict(section.overrides)),
                "links": launcher_links(ctx),
            }
        },
    }
    return HubParts(values=values, after=(secret,))
