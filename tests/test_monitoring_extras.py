"""Monitoring a platform team can use (issue 17 item 3): dashboards, scrape jobs, Keycloak check.

Dashboards are checked as Grafana would load them: the JSON the ConfigMap carries is read
back through the Grafana Foundation SDK's dashboard model (every key we write must survive
the model's round trip, so a misspelt key or a wrong shape shows up), the layout fits
Grafana's 24-column grid, every query parses as PromQL (promql-parser, Prometheus' grammar)
and reads a job that Prometheus scrapes, and the ConfigMap carries the label the chart's
Grafana sidecar looks for (from the chart's values.yaml).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as grafana

from stagegraph.configfile import load_config
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.stages import healthchecks, services

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
EXPLICIT = ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml"
CHARTS = ROOT.parent / "shared" / "charts"
DASHBOARDS = ("cluster-usage", "jupyterhub", "dask", "conda-store", "traefik", "keycloak")


@functools.cache
def _doc() -> dict[str, Any]:
    """One render for the module (read only)."""
    files = render_stage(services.STAGE, load_config(EXPLICIT), LOCK, "x").files
    doc: dict[str, Any] = json.loads(files["main.tf.json"])
    return doc


@functools.cache
def _chart_values() -> dict[str, Any]:
    version = LOCK.helm_charts["kube_prometheus_stack"].version
    values: dict[str, Any] = yaml.safe_load(
        (CHARTS / "kube-prometheus-stack" / version / "values.yaml").read_text()
    )
    return values


def _dashboards(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for key, cm in doc["resource"]["kubernetes_config_map"].items():
        if not key.startswith("dashboard_"):
            continue
        ((file_name, ref),) = cm["data"].items()
        local = re.fullmatch(r"\$\{jsonencode\(local\.(\w+)\)\}", ref)
        assert local is not None, ref
        # As Terraform writes it: jsonencode of the local, namespace filled in.
        text = json.dumps(doc["locals"][local.group(1)]).replace("${var.namespace}", "dev")
        out[file_name] = {"json": json.loads(text), "config_map": cm}
    return out


def _promql(expr: str) -> str:
    """Grafana's variables as Grafana substitutes them before Prometheus sees the query."""
    return expr.replace("$__rate_interval", "5m").replace("$namespace", "dev")


def _kept(ours: Any, theirs: Any, path: str) -> None:
    """Every key we wrote is in the model's round trip, with the same value."""
    if isinstance(ours, dict):
        assert isinstance(theirs, dict), path
        for key, value in ours.items():
            assert key in theirs, f"{path}.{key} is not part of Grafana's dashboard model"
            _kept(value, theirs[key], f"{path}.{key}")
    elif isinstance(ours, list):
        assert isinstance(theirs, list) and len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _kept(a, b, f"{path}[{i}]")
    else:
        assert ours == theirs, path


def test_the_dashboards_nebari_ships_are_all_there() -> None:
    found = {name.removesuffix(".json") for name in _dashboards(_doc())}
    assert found == set(DASHBOARDS)


@pytest.mark.parametrize("name", DASHBOARDS)
def test_each_dashboard_is_valid_grafana_json(name: str) -> None:
    doc = _doc()
    entry = _dashboards(doc)[f"{name}.json"]
    body = entry["json"]
    model = grafana.Dashboard.from_json(body)
    round_trip = json.loads(json.dumps(model, cls=JSONEncoder))
    top = {k: v for k, v in body.items() if k not in ("panels", "templating")}
    _kept(top, round_trip, name)
    assert len(body["uid"]) <= 40 and body["title"]
    ids = [p["id"] for p in body["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in body["panels"]:
        panel_trip = json.loads(json.dumps(grafana.Panel.from_json(panel), cls=JSONEncoder))
        _kept(panel, panel_trip, f"{name}:{panel['title']}")
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            promql_parser.parse(_promql(target["expr"]))  # raises on a query Prometheus would refuse
            assert target["datasource"]["uid"] == _chart_values()["grafana"]["sidecar"]["datasources"]["uid"]
    variable = body["templating"]["list"][0]
    assert variable["name"] == "namespace" and variable["query"] == "dev"


def test_grafanas_sidecar_picks_the_dashboards_up_into_a_folder() -> None:
    doc = _doc()
    sidecar = _chart_values()["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True
    stack = doc["locals"]["kube_prometheus_stack_values"]
    annotation = stack["grafana"]["sidecar"]["dashboards"]["folderAnnotation"]
    for entry in _dashboards(doc).values():
        meta = entry["config_map"]["metadata"][0]
        assert meta["labels"] == {sidecar["label"]: sidecar["labelValue"]}
        assert meta["annotations"][annotation] == "Nebari"


def test_every_job_a_dashboard_reads_is_scraped() -> None:
    doc = _doc()
    jobs = {
        j["job_name"]
        for j in doc["locals"]["kube_prometheus_stack_values"]["prometheus"]["prometheusSpec"][
            "additionalScrapeConfigs"
        ]
    }
    assert {"jupyterhub", "conda-store", "keycloak", "traefik", "annotated-services"} <= jobs
    for entry in _dashboards(doc).values():
        for panel in entry["json"]["panels"]:
            for target in panel["targets"]:
                for job in re.findall(r'job="([^"]+)"', target["expr"]):
                    assert job in jobs, f"{panel['title']} reads job {job!r}, which nothing scrapes"


def test_prometheus_reads_hub_metrics_with_a_token_only_allowed_to_read_metrics() -> None:
    doc = _doc()
    spec = doc["locals"]["kube_prometheus_stack_values"]["prometheus"]["prometheusSpec"]
    (hub_job,) = [j for j in spec["additionalScrapeConfigs"] if j["job_name"] == "jupyterhub"]
    token_file = hub_job["authorization"]["credentials_file"]
    # The operator mounts each listed Secret at /etc/prometheus/secrets/<name>/<key>.
    _, secret_name, key = token_file.rsplit("/", 2)
    assert token_file.startswith("/etc/prometheus/secrets/") and secret_name in spec["secrets"]
    secret = doc["resource"]["kubernetes_secret"][secret_name.replace("-", "_")]
    hub = doc["locals"]["jupyterhub_values"]["hub"]
    assert hub["services"]["monitoring"]["apiToken"] == secret["data"][key]
    assert secret["data"][key].startswith("${random_password.")
    assert hub["loadRoles"]["metrics"] == {"services": ["monitoring"], "scopes": ["read:metrics"]}
    assert "credentials" not in hub_job["authorization"]


def test_kuberhealthy_checks_keycloak_beside_the_others() -> None:
    config = load_config(EXPLICIT)
    files = render_stage(healthchecks.STAGE, config, LOCK, "x").files
    check = yaml.safe_load(files["manifests/keycloak-http-check.yaml"])
    env = {e["name"]: e["value"] for e in check["spec"]["podSpec"]["containers"][0]["env"]}
    base = check["metadata"]["annotations"][healthchecks.URL_ANNOTATION]
    assert env["CHECK_URL"] == f"{base}realms/nebari/.well-known/openid-configuration"
    # The URL the check names is the one 07 reports, so deploy-time verification agrees.
    urls = _doc()["output"]
    reported = urls["internal_urls" if base.startswith("http://") else "urls"]["value"]
    namespace = config.namespace
    assert (
        reported["keycloak"]
        .replace("${var.namespace}", namespace)
        .replace("${var.domain}", str(config.domain))
        == base
    )
