"""Grafana dashboards a platform team starts from: cluster usage, JupyterHub, Dask, conda-store,
Traefik and Keycloak (the set Nebari ships, written here from scratch).

Each dashboard is built as Grafana's dashboard JSON model (schemaVersion 39) from a few
panel helpers, kept structured in a `locals` entry and delivered as a ConfigMap labelled
`grafana_dashboard: "1"`, which kube-prometheus-stack's Grafana sidecar loads (its default
label) into the "Nebari" folder. The queries read the series of kube-state-metrics,
node-exporter and cAdvisor (the stack's own) and of the extra scrape jobs in svc_scrape
(JupyterHub, conda-store, Keycloak, Traefik). Datasource: the stack's Prometheus (uid
`prometheus`); `$namespace` is a dashboard variable defaulting to the platform namespace.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stages.svc_kube import NAMESPACE
from stagegraph.tfjson import Ref, TerraformModule

PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
FOLDER = "Nebari"
SCHEMA_VERSION = 39
#: Quantiles the latency panels show (a number, not a version).
P50, P90 = 0.5, 0.9
#: Users' servers and Dask pods, by the names their spawners give them.
USER_PODS = 'namespace="$namespace", pod=~"jupyter-.*"'
SCHEDULER_PODS = 'namespace="$namespace", pod=~"dask-scheduler-.*"'
WORKER_PODS = 'namespace="$namespace", pod=~"dask-worker-.*"'


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"refId": ref, "expr": expr, "legendFormat": legend, "datasource": PROMETHEUS}


def _panel(
    kind: str, title: str, queries: list[tuple[str, str]], unit: str, w: int, h: int
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "datasource": PROMETHEUS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [_target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)],
        "gridPos": {"w": w, "h": h, "x": 0, "y": 0},
    }


def stat(title: str, expr: str, unit: str = "short") -> dict[str, Any]:
    return _panel("stat", title, [(expr, title)], unit, 6, 4)


def series(title: str, queries: list[tuple[str, str]], unit: str = "short") -> dict[str, Any]:
    return _panel("timeseries", title, queries, unit, 12, 8)


def dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    """A dashboard with its panels laid out left to right, top to bottom, ids from 1."""
    x = y = row_height = 0
    laid_out = []
    for number, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append({**panel, "id": number, "gridPos": {"w": w, "h": h, "x": x, "y": y}})
        x, row_height = x + w, max(row_height, h)
    return {
        "uid": uid,
        "title": title,
        "tags": ["nebari"],
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "browser",
        "templating": {
            "list": [
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "custom",
                    "query": NAMESPACE,
                    "current": {"text": NAMESPACE, "value": NAMESPACE},
                    "options": [],
                }
            ]
        },
        "panels": laid_out,
    }


def _by_pod(metric: str, pods: str) -> str:
    return f"sum by (pod) ({metric}{{{pods}}})"


def _cpu(pods: str) -> str:
    return (
        f'sum by (pod) (rate(container_cpu_usage_seconds_total{{{pods}, container!=""}}[$__rate_interval]))'
    )


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard by file name."""
    memory = "container_memory_working_set_bytes"
    return {
        "cluster-usage.json": dashboard(
            "nebari-cluster-usage",
            "Cluster usage",
            [
                stat("Nodes", "count(kube_node_info)"),
                stat(
                    "Running user servers",
                    f'count(kube_pod_status_phase{{{USER_PODS}, phase="Running"}} == 1)',
                ),
                stat(
                    "CPU requested",
                    'sum(kube_pod_container_resource_requests{resource="cpu"}) '
                    '/ sum(kube_node_status_allocatable{resource="cpu"})',
                    "percentunit",
                ),
                stat(
                    "Memory requested",
                    'sum(kube_pod_container_resource_requests{resource="memory"}) '
                    '/ sum(kube_node_status_allocatable{resource="memory"})',
                    "percentunit",
                ),
                series(
                    "Node CPU busy",
                    [
                        (
                            '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))',
                            "{{instance}}",
                        )
                    ],
                    "percentunit",
                ),
                series(
                    "Node memory used",
                    [("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{instance}}")],
                    "percentunit",
                ),
                series(
                    "Pods not running",
                    [
                        (
                            'sum by (phase) (kube_pod_status_phase{phase!="Running", phase!="Succeeded"})',
                            "{{phase}}",
                        )
                    ],
                ),
            ],
        ),
        "jupyterhub.json": dashboard(
            "nebari-jupyterhub",
            "JupyterHub",
            [
                stat("Active users (24h)", 'max(jupyterhub_active_users{period="24h"})'),
                stat("Running servers", "max(jupyterhub_running_servers)"),
                series(
                    "Server start time (p50, p90)",
                    [
                        (
                            f"histogram_quantile({q}, sum by (le) (rate(jupyterhub_server_spawn_duration_seconds_bucket[$__rate_interval])))",
                            f"p{int(q * 100)}",
                        )
                        for q in (P50, P90)
                    ],
                    "s",
                ),
                series(
                    "Hub API requests",
                    [
                        (
                            "sum by (code) (rate(jupyterhub_request_duration_seconds_count[$__rate_interval]))",
                            "{{code}}",
                        )
                    ],
                    "reqps",
                ),
                series("User server memory", [(_by_pod(memory, USER_PODS), "{{pod}}")], "bytes"),
                series("User server CPU", [(_cpu(USER_PODS), "{{pod}}")], "cores"),
            ],
        ),
        "dask.json": dashboard(
            "nebari-dask",
            "Dask Gateway",
            [
                stat(
                    "Running clusters",
                    f'count(kube_pod_status_phase{{{SCHEDULER_PODS}, phase="Running"}} == 1)',
                ),
                stat(
                    "Running workers", f'count(kube_pod_status_phase{{{WORKER_PODS}, phase="Running"}} == 1)'
                ),
                series("Scheduler memory", [(_by_pod(memory, SCHEDULER_PODS), "{{pod}}")], "bytes"),
                series("Worker memory", [(_by_pod(memory, WORKER_PODS), "{{pod}}")], "bytes"),
                series("Worker CPU", [(_cpu(WORKER_PODS), "{{pod}}")], "cores"),
            ],
        ),
        "conda-store.json": dashboard(
            "nebari-conda-store",
            "conda-store",
            [
                stat("Environments", "max(conda_store_environments)"),
                stat("Builds queued", "max(conda_store_build_queued)"),
                stat("Builds running", "max(conda_store_build_building)"),
                stat("Builds failed", "max(conda_store_build_failed)"),
                series(
                    "Builds",
                    [
                        ("max(conda_store_build_completed)", "completed"),
                        ("max(conda_store_build_failed)", "failed"),
                    ],
                ),
                series(
                    "Environment storage used",
                    [("max(conda_store_disk_usage / conda_store_disk_total)", "used")],
                    "percentunit",
                ),
            ],
        ),
        "traefik.json": dashboard(
            "nebari-traefik",
            "Traefik",
            [
                stat("Open connections", "sum(traefik_open_connections)"),
                series(
                    "Requests per entrypoint",
                    [
                        (
                            "sum by (entrypoint) (rate(traefik_entrypoint_requests_total[$__rate_interval]))",
                            "{{entrypoint}}",
                        )
                    ],
                    "reqps",
                ),
                series(
                    "Errors (5xx) per service",
                    [
                        (
                            'sum by (service) (rate(traefik_service_requests_total{code=~"5.."}[$__rate_interval]))',
                            "{{service}}",
                        )
                    ],
                    "reqps",
                ),
                series(
                    "Latency p90 per service",
                    [
                        (
                            f"histogram_quantile({P90}, sum by (service, le) "
                            "(rate(traefik_service_request_duration_seconds_bucket[$__rate_interval])))",
                            "{{service}}",
                        )
                    ],
                    "s",
                ),
            ],
        ),
        "keycloak.json": dashboard(
            "nebari-keycloak",
            "Keycloak",
            [
                stat("Up", 'max(up{job="keycloak"})'),
                series(
                    "JVM heap used",
                    [('sum(jvm_memory_used_bytes{job="keycloak", area="heap"})', "heap")],
                    "bytes",
                ),
                series(
                    "HTTP requests by status",
                    [
                        (
                            'sum by (status) (rate(http_server_requests_seconds_count{job="keycloak"}[$__rate_interval]))',
                            "{{status}}",
                        )
                    ],
                    "reqps",
                ),
                series(
                    "Request time (mean)",
                    [
                        (
                            'sum(rate(http_server_requests_seconds_sum{job="keycloak"}[$__rate_interval])) '
                            '/ sum(rate(http_server_requests_seconds_count{job="keycloak"}[$__rate_interval]))',
                            "mean",
                        )
                    ],
                    "s",
                ),
            ],
        ),
    }


def dashboard_config_maps(m: TerraformModule) -> list[Ref]:
    """One ConfigMap per dashboard, picked up by Grafana's sidecar."""
    refs = []
    for file_name, body in dashboards().items():
        key = "dashboard_" + file_name.removesuffix(".json").replace("-", "_")
        # No literal(): the body carries ${var.namespace} for Terraform to fill in, and
        # PromQL and Grafana's own `$name` / `{{label}}` syntax never form `${` or `%{`.
        m.local(key, body)
        refs.append(
            m.resource(
                "kubernetes_config_map",
                key,
                {
                    "metadata": [
                        {
                            "name": f"grafana-{file_name.removesuffix('.json')}",
                            "namespace": NAMESPACE,
                            "labels": {"grafana_dashboard": "1"},
                            "annotations": {"grafana_folder": FOLDER},
                        }
                    ],
                    "data": {file_name: f"${{jsonencode(local.{key})}}"},
                },
            )
        )
    return refs
