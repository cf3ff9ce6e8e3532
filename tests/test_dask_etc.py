"""Dask for every user (issue 17 item 2): what a notebook's `dask_gateway.Gateway()` reads.

The rendered dask-etc ConfigMap is written where the PROFILES script mounts it in every
JupyterLab server, and read with `dask.config` itself, from dask's own search path, as the
user's kernel does at import. The addresses must name what the pinned chart creates (its
Traefik Service and ports, from the chart's values.yaml in ../shared/charts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask.config
import yaml

from stagegraph.configfile import load_config
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.stages import ingress, services
from stagegraph.stages.svc_dask_etc import MOUNT_PATH

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
EXPLICIT = ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml"
CHARTS = ROOT.parent / "shared" / "charts"


def _doc(stage: Any) -> dict[str, Any]:
    files = render_stage(stage, load_config(EXPLICIT), LOCK, "lockfiles/versions.yaml").files
    doc: dict[str, Any] = json.loads(files["main.tf.json"])
    return doc


def _terraform(value: Any, namespace: str, domain: str) -> Any:
    """The two Terraform references the file carries, as Terraform fills them in."""
    text = json.dumps(value).replace("${var.namespace}", namespace).replace("${var.domain}", domain)
    return json.loads(text)


def test_gateway_without_arguments_reads_the_rendered_dask_etc(tmp_path: Path) -> None:
    doc = _doc(services.STAGE)
    data = doc["resource"]["kubernetes_config_map"]["dask_etc"]["data"]
    assert data == {"gateway.yaml": "${yamlencode(local.dask_etc_gateway)}"}
    gateway_yaml = yaml.safe_dump(_terraform(doc["locals"]["dask_etc_gateway"], "dev", "nebari.example.com"))
    # Every server mounts the ConfigMap at /etc/dask, one of the folders dask.config searches.
    mounts = doc["locals"]["jupyterhub_values"]["custom"]["config-mounts"]
    assert {"name": "dask-etc", "kind": "configmap", "mount_path": MOUNT_PATH} in mounts
    assert MOUNT_PATH in dask.config.paths
    etc = tmp_path / "etc-dask"
    etc.mkdir()
    (etc / "gateway.yaml").write_text(gateway_yaml)
    collected = dask.config.collect(paths=[str(etc)], env={})
    with dask.config.set(collected):
        # What dask_gateway.Gateway() looks up when called with no arguments.
        assert dask.config.get("gateway.address") == "http://traefik-dask-gateway.dev:80/gateway"
        assert dask.config.get("gateway.proxy-address") == "gateway://traefik-dask-gateway.dev:80"
        assert dask.config.get("gateway.public-address") == "https://nebari.example.com/gateway"
        assert dask.config.get("gateway.auth.type") == "jupyterhub"
        # dask normalises - and _ in keys, so either spelling reaches dask_gateway.
        assert dask.config.get("gateway.proxy_address") == dask.config.get("gateway.proxy-address")


def test_the_addresses_name_the_charts_proxy_and_its_shared_port() -> None:
    values = yaml.safe_load(
        (CHARTS / "dask-gateway" / LOCK.helm_charts["dask_gateway"].version / "values.yaml").read_text()
    )
    ports = values["traefik"]["service"]["ports"]
    # The chart's proxy serves the API and the schedulers' TCP on the web port (80).
    assert ports["web"]["port"] == 80 and ports["tcp"]["port"] == "web"
    release = _doc(services.STAGE)["resource"]["helm_release"]["dask_gateway"]
    assert release["name"] == "dask-gateway"  # the chart names its Service traefik-<release>


def test_port_8786_reaches_the_gateway_from_outside() -> None:
    doc = _doc(services.STAGE)
    route = doc["locals"]["route_dask_gateway_tcp_manifest"]
    assert route["kind"] == "IngressRouteTCP"
    assert route["spec"]["entryPoints"] == ["tcp"]
    assert route["spec"]["routes"][0]["services"] == [{"name": "traefik-dask-gateway", "port": 80}]
    traefik = _doc(ingress.STAGE)["locals"]["traefik_values"]
    assert traefik["ports"]["tcp"] == {"port": 8786, "expose": {"default": True}, "exposedPort": 8786}
