"""Monitoring at /monitoring: Prometheus and Grafana (kube-prometheus-stack), Loki, Promtail.

Grafana logs users in through Keycloak; their Grafana role follows their Keycloak client
roles on the grafana client (table GRAFANA_ROLES; 06 grants the roles from the admin,
developer and analyst groups). Loki keeps logs in a MinIO bucket when
`monitoring.minio_enabled`, else on its own volume. `monitoring.overrides.*` are merged
into each chart's values last, so they win.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages import svc_minio
from stagegraph.stages.common import deep_merge, helm_release
from stagegraph.stages.svc_kube import (
    NAMESPACE,
    Route,
    host,
    ingress_route,
    opaque_secret,
    random_secret,
    secret_env,
)
from stagegraph.stages.svc_oauth import (
    CLIENT_SECRET_KEY,
    client_id,
    client_secret_name,
    endpoints,
    insecure_tls,
)
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

PROMETHEUS = "kube-prometheus-stack"
GRAFANA_SERVICE = f"{PROMETHEUS}-grafana"
LOKI_GATEWAY = "http://loki-gateway.${var.namespace}.svc.cluster.local"
MINIO_SECRET = "loki-minio-credentials"  # noqa: S105 - the name of a generated secret
MINIO_USER = "loki"
#: Grafana's local admin: generated, never the chart's published `prom-operator`. Logins go
#: through Keycloak (the login form and basic auth are off); this one is for break-glass use.
GRAFANA_ADMIN_SECRET = "grafana-admin"  # noqa: S105 - the name of a generated secret
GRAFANA_ADMIN = {
    "existingSecret": GRAFANA_ADMIN_SECRET,
    "userKey": "admin-user",
    "passwordKey": "admin-password",
}
#: Keycloak client role on the grafana client -> Grafana role, first match wins.
GRAFANA_ROLES: tuple[tuple[str, str], ...] = (
    ("grafana_admin", "Admin"),
    ("grafana_developer", "Editor"),
    ("grafana_viewer", "Viewer"),
)


def role_attribute_path() -> str:
    """Grafana's JMESPath from the `roles` claim to a Grafana role (Viewer when none)."""
    rules = " || ".join(f"contains(roles[*], '{role}') && '{grafana}'" for role, grafana in GRAFANA_ROLES)
    return f"{rules} || 'Viewer'"


def monitoring(
    ctx: RenderContext,
    m: TerraformModule,
    nodes: dict[str, str],
    extra_stack_values: dict[str, Any] | None = None,
) -> list[Ref]:
    """`extra_stack_values`: what other modules add to kube-prometheus-stack (svc_scrape)."""
    section = ctx.config.monitoring
    overrides = section.overrides
    releases: list[Ref] = []
    minio: Ref | None = None
    if section.minio_enabled:
        minio = svc_minio.minio(
            ctx,
            m,
            "loki-minio",
            secret=MINIO_SECRET,
            user=MINIO_USER,
            bucket="loki",
            size="50Gi",
            resources={"memory": "512Mi"},
            node_selector=nodes["general"],
            overrides=literal(dict(overrides.minio)),
        )
        releases.append(minio)
    loki: Ref = helm_release(
        m,
        ctx,
        "loki",
        "loki",
        NAMESPACE,
        deep_merge(_loki_values(nodes, section.minio_enabled), literal(dict(overrides.loki))),
        depends_on=depends(minio) if minio is not None else [],
    )
    promtail_values = {"config": {"clients": [{"url": f"{LOKI_GATEWAY}/loki/api/v1/push"}]}}
    promtail: Ref = helm_release(
        m,
        ctx,
        "promtail",
        "promtail",
        NAMESPACE,
        deep_merge(promtail_values, literal(dict(overrides.promtail))),
        depends_on=depends(loki),
    )
    admin = opaque_secret(
        m,
        GRAFANA_ADMIN_SECRET,
        {"admin-user": "admin", "admin-password": random_secret(m, "grafana_admin")},
    )
    stack: Ref = helm_release(
        m,
        ctx,
        PROMETHEUS,
        "kube_prometheus_stack",
        NAMESPACE,
        deep_merge(_stack_values(nodes), extra_stack_values or {}),
        timeout=900,
        depends_on=depends(admin),
    )
    releases += [loki, promtail, stack]
    ingress_route(
        m,
        "grafana",
        [Route(host("PathPrefix(`/monitoring`)"), GRAFANA_SERVICE, 80)],
        after=(stack,),
    )
    return releases


def _loki_values(nodes: dict[str, str], minio: bool) -> dict[str, Any]:
    if minio:
        storage: dict[str, Any] = {
            "type": "s3",
            "bucketNames": {"chunks": "loki", "ruler": "loki", "admin": "loki"},
            "s3": {
                "endpoint": "http://loki-minio.${var.namespace}.svc:9000",
                # Expanded by Loki from the environment (-config.expand-env), not by Terraform.
                "accessKeyId": "$${MINIO_ROOT_USER}",
                "secretAccessKey": "$${MINIO_ROOT_PASSWORD}",
                "s3ForcePathStyle": True,
                "insecure": True,
            },
        }
        env = [
            secret_env("MINIO_ROOT_USER", MINIO_SECRET, svc_minio.ROOT_USER_KEY),
            secret_env("MINIO_ROOT_PASSWORD", MINIO_SECRET, svc_minio.ROOT_PASSWORD_KEY),
        ]
    else:
        storage = {"type": "filesystem"}
        env = []
    store = "s3" if minio else "filesystem"
    return {
        "deploymentMode": "SingleBinary",
        "loki": {
            "auth_enabled": False,
            "commonConfig": {"replication_factor": 1},
            "storage": storage,
            "schemaConfig": {
                "configs": [
                    {
                        "from": "2024-04-01",
                        "store": "tsdb",
                        "object_store": store,
                        "schema": "v13",
                        "index": {"prefix": "index_", "period": "24h"},
                    }
                ]
            },
        },
        "singleBinary": {
            "replicas": 1,
            "extraArgs": ["-config.expand-env=true"],
            "extraEnv": env,
            "nodeSelector": nodes["general"],
        },
        "read": {"replicas": 0},
        "write": {"replicas": 0},
        "backend": {"replicas": 0},
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
        "minio": {"enabled": False},
        "gateway": {"nodeSelector": nodes["general"]},
    }


def _stack_values(nodes: dict[str, str]) -> dict[str, Any]:
    ep = endpoints()
    grafana = {
        "nodeSelector": nodes["general"],
        "admin": GRAFANA_ADMIN,
        "grafana.ini": {
            "server": {
                "domain": "${var.domain}",
                "root_url": "https://${var.domain}/monitoring",
                "serve_from_sub_path": True,
            },
            "auth": {"disable_login_form": True},
            "auth.basic": {"enabled": False},
            "auth.generic_oauth": {
                "enabled": True,
                "name": "Keycloak",
                "allow_sign_up": True,
                "client_id": client_id("grafana"),
                "scopes": "openid profile email roles",
                "auth_url": ep["authorize"],
                "token_url": ep["token"],
                "api_url": ep["userinfo"],
                "login_attribute_path": "preferred_username",
                "role_attribute_path": role_attribute_path(),
                "allow_assign_grafana_admin": True,
                "tls_skip_verify_insecure": insecure_tls(),
            },
        },
        # Grafana's env override for the client secret, read from 06's secret by the pod.
        "envValueFrom": {
            "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": {
                "secretKeyRef": {"name": client_secret_name("grafana"), "key": CLIENT_SECRET_KEY}
            }
        },
        "additionalDataSources": [{"name": "Loki", "type": "loki", "url": LOKI_GATEWAY, "access": "proxy"}],
    }
    return {
        "grafana": grafana,
        "prometheus": {
            "prometheusSpec": {
                "nodeSelector": nodes["general"],
                # Pick up every ServiceMonitor in the namespace, not only the chart's own.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
            }
        },
        "alertmanager": {"alertmanagerSpec": {"nodeSelector": nodes["general"]}},
        "prometheusOperator": {"nodeSelector": nodes["general"]},
        "kube-state-metrics": {"nodeSelector": nodes["general"]},
    }
