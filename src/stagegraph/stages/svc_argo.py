"""Argo Workflows at /argo: Keycloak SSO, and one service account per Argo role.

Keycloak gives users the roles argo-admin, argo-developer or argo-viewer (06 maps them
from the admin, developer and analyst groups); Argo's SSO RBAC picks the service account
whose rule matches, and JupyterLab servers get that account's token (see the hub's
PROFILES script). The nebari-workflow-controller (svc_argo_controller) stops users from
mounting other users' volumes.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.common import deep_merge, helm_release
from stagegraph.stages.svc_argo_controller import workflow_controller
from stagegraph.stages.svc_kube import (
    NAMESPACE,
    Route,
    host,
    ingress_route,
    manifest,
    strip_prefix,
)
from stagegraph.stages.svc_oauth import (
    CLIENT_ID_KEY,
    CLIENT_SECRET_KEY,
    client_secret_name,
    insecure_tls,
    realm_url,
)
from stagegraph.tfjson import Ref, TerraformModule, literal

RELEASE = "argo-workflows"
PREFIX = "argo"
#: Keycloak group -> Argo role (service account), most privileged first; the
#: `workflows.argoproj.io/rbac-rule-precedence` makes the first match win in Argo too.
ROLES: tuple[tuple[str, str, str, int], ...] = (
    # (group, role/service account, Argo cluster role from the chart, precedence)
    ("admin", "argo-admin", "argo-workflows-admin", 11),
    ("developer", "argo-developer", "argo-workflows-edit", 10),
    ("analyst", "argo-viewer", "argo-workflows-view", 9),
)


def hub_settings(enabled: bool) -> dict[str, Any]:
    """What the hub's PROFILES script needs to hand users an Argo token."""
    if not enabled:
        return {"enabled": False}
    return {
        "enabled": True,
        "service-accounts": [[group, account] for group, account, _, _ in ROLES],
        "server": "${var.domain}:443",
        "namespace": NAMESPACE,
    }


def argo_workflows(ctx: RenderContext, m: TerraformModule, nodes: dict[str, str]) -> Ref:
    section = ctx.config.argo_workflows
    secret = client_secret_name("argo")
    values: dict[str, Any] = {
        "singleNamespace": True,
        "controller": {
            "metricsConfig": {"enabled": True},
            "workflowNamespaces": [NAMESPACE],
            "nodeSelector": nodes["general"],
        },
        "server": {
            "authModes": ["sso", "client"],
            "secure": False,
            "baseHref": f"/{PREFIX}/",
            "nodeSelector": nodes["general"],
            "sso": {
                "enabled": True,
                "issuer": realm_url(),
                "insecureSkipVerify": insecure_tls(),
                "clientId": {"name": secret, "key": CLIENT_ID_KEY},
                "clientSecret": {"name": secret, "key": CLIENT_SECRET_KEY},
                "redirectUrl": f"https://${{var.domain}}/{PREFIX}/oauth2/callback",
                "scopes": ["roles"],
                "customGroupClaimName": "roles",
                "rbac": {"enabled": True, "secretWhitelist": []},
            },
        },
    }
    values = deep_merge(values, literal(dict(section.overrides)))
    release: Ref = helm_release(m, ctx, RELEASE, "argo_workflows", NAMESPACE, values)
    accounts = [
        _role(m, group, account, cluster_role, precedence, release)
        for group, account, cluster_role, precedence in ROLES
    ]
    strip = strip_prefix(m, "argo-stripprefix", f"/{PREFIX}/")
    routes = [Route(host(f"PathPrefix(`/{PREFIX}`)"), f"{RELEASE}-server", 2746, ("argo-stripprefix",))]
    if section.nebari_workflow_controller.enabled:
        routes = [*workflow_controller(ctx, m, nodes, release, PREFIX), *routes]
    ingress_route(m, "argo-workflows", routes, after=(release, strip, *accounts))
    return release


def _role(
    m: TerraformModule, group: str, account: str, cluster_role: str, precedence: int, release: Ref
) -> Ref:
    key = account.replace("-", "_")
    sa = manifest(
        m,
        f"{key}_service_account",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": account,
                "namespace": NAMESPACE,
                "annotations": {
                    "workflows.argoproj.io/rbac-rule": f"'{account}' in groups",
                    "workflows.argoproj.io/rbac-rule-precedence": str(precedence),
                    "nebari.dev/keycloak-group": group,
                },
            },
        },
    )
    manifest(
        m,
        f"{key}_token",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": f"{account}.service-account-token",
                "namespace": NAMESPACE,
                "annotations": {"kubernetes.io/service-account.name": account},
            },
        },
        after=(sa,),
    )
    binding = manifest(
        m,
        f"{key}_binding",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": account, "namespace": NAMESPACE},
            # The chart's ClusterRoles, bound in the platform namespace only.
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}],
        },
        after=(sa, release),
    )
    return binding
