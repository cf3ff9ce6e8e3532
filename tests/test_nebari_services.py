"""Every service Nebari's documentation offers its users is in the render, or the README says why not.

Issue 17 ("tried as a new user would, with a Nebari-written explicit config"). The list is
Nebari's documentation as data: nebari-dev/nebari-docs at commit 12b1ad0 (2025-10-21, the
docs of Nebari 2025.10.x), one entry per page under docs/docs/ that introduces a service a
deployment runs for its users or admins. Each entry names what shows that service in a
render of tests/fixtures/configs/explicit-local.happy.yaml (every optional service on):
a Helm chart, a Kubernetes object (`Kind/name`, from 07's manifests and resources and the
YAML manifests of 10 and 11), a file of a ConfigMap (`ConfigMap/name:key`), a hub
extraConfig script, the JupyterLab image; or, for a service left out, the words of the
README's "Left out on purpose" list that explain it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from scriptfakes import Config, fake_modules, module, z2jh

from stagegraph.configfile import load_config
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.stages import services
from stagegraph.stages.builtin import BUILTIN_STAGES

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
EXPLICIT = ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml"
DOCS = "https://github.com/nebari-dev/nebari-docs/blob/12b1ad0/docs/docs/"


@dataclass(frozen=True)
class Documented:
    service: str
    page: str
    #: What a render holds when the service is deployed (all of them).
    found: tuple[str, ...] = ()
    #: Words of the README's "Left out on purpose" list, for a service not rendered.
    readme: str | None = None


NEBARI_DOCUMENTED_SERVICES = (
    Documented("JupyterHub", "tutorials/login-with-keycloak.md", ("helm:jupyterhub",)),
    Documented("Keycloak", "how-tos/configure-keycloak-howto.md", ("helm:keycloakx",)),
    Documented("Traefik ingress", "how-tos/nebari-stages-directory.md", ("helm:traefik",)),
    Documented("conda-store", "tutorials/creating-new-environments.md", ("Deployment/conda-store-server",)),
    Documented(
        "Dask Gateway", "tutorials/using_dask.md", ("helm:dask-gateway", "ConfigMap/dask-etc:gateway.yaml")
    ),
    Documented(
        "jupyterhub-ssh (SSH and SFTP)",
        "how-tos/connect-via-ssh.mdx",
        ("Deployment/jupyterhub-ssh", "Deployment/jupyterhub-sftp"),
    ),
    Documented("JHub App Launcher", "how-tos/jhub-app-launcher.md", ("hub-script:05-jhub-apps.py",)),
    # "the home page for Nebari - providing access to various Nebari services".
    Documented(
        "App Launcher links to the other services",
        "how-tos/jhub-app-launcher.md",
        ("launcher:/conda-store", "launcher:/argo", "launcher:/monitoring"),
    ),
    Documented("Argo Workflows", "how-tos/setup-argo.md", ("helm:argo-workflows",)),
    Documented(
        "jupyter-scheduler on Argo Workflows",
        "tutorials/run-notebook-as-a-job.md",
        ("ConfigMap/etc-jupyter:jupyter_server_config.py",),
    ),
    Documented("Grafana and Prometheus", "how-tos/setup-monitoring.md", ("helm:kube-prometheus-stack",)),
    Documented("Loki logs in Grafana", "how-tos/access-logs-loki.md", ("helm:loki", "helm:promtail")),
    Documented(
        "Kuberhealthy health checks",
        "how-tos/setup-healthcheck.md",
        ("KuberhealthyCheck/dask-gateway-http-check",),
    ),
    Documented("JupyterLab gallery", "how-tos/jupyter-gallery.md", ("Secret/jupyterlab-gallery",)),
    Documented(
        "Idle culler",
        "how-tos/nebari-idle-culler.md",
        ("ConfigMap/etc-jupyter:jupyter_server_config.json", "hub:cull"),
    ),
    Documented(
        "jupyterlab-pioneer telemetry",
        "how-tos/telemetry.md",
        ("ConfigMap/etc-jupyter:jupyterlab_pioneer.json",),
    ),
    # VS Code is code-server inside Nebari's JupyterLab image (jupyter-vscode-proxy).
    Documented("VS Code", "how-tos/using-vscode.md", ("image:quay.io/nebari/nebari-jupyterlab",)),
)


def _objects(value: Any) -> list[dict[str, Any]]:
    """Kubernetes objects anywhere in a Terraform JSON document (manifest locals, kubectl YAML)."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if isinstance(value.get("kind"), str) and isinstance(value.get("metadata"), dict):
            found.append(value)
        for item in value.values():
            found += _objects(item)
    elif isinstance(value, list):
        for item in value:
            found += _objects(item)
    return found


def rendered_markers() -> set[str]:
    config = load_config(EXPLICIT)
    markers: set[str] = set()
    for stage in BUILTIN_STAGES:
        files = render_stage(stage, config, LOCK, "lockfiles/versions.yaml").files
        for name, text in files.items():
            if name.endswith((".yaml", ".yml")):
                for obj in yaml.safe_load_all(text):
                    if obj:
                        markers.add(f"{obj['kind']}/{obj['metadata']['name']}")
                continue
            if not name.endswith(".tf.json"):
                continue
            doc = json.loads(text)
            for obj in _objects(doc.get("locals", {})):
                markers.add(f"{obj['kind']}/{obj['metadata'].get('name')}")
            resources = doc.get("resource", {})
            for release in resources.get("helm_release", {}).values():
                markers.add(f"helm:{release['chart']}")
            for kind, type_ in (("ConfigMap", "kubernetes_config_map"), ("Secret", "kubernetes_secret")):
                for body in resources.get(type_, {}).values():
                    object_name = body["metadata"][0]["name"]
                    markers.add(f"{kind}/{object_name}")
                    markers |= {f"{kind}/{object_name}:{key}" for key in body.get("data", {})}
            hub = doc.get("locals", {}).get("jupyterhub_values")
            if hub is not None:
                markers |= {f"hub-script:{key}" for key in hub["hub"].get("extraConfig", {})}
                if hub.get("cull", {}).get("enabled"):
                    markers.add("hub:cull")
                markers.add(f"image:{hub['singleuser']['image']['name']}")
                links = hub.get("custom", {}).get("jhub-apps", {}).get("links", [])
                markers |= {f"launcher:{link['url']}" for link in links}
    return markers


@pytest.fixture(scope="module")
def markers() -> set[str]:
    return rendered_markers()


def _left_out_section() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("Left out on purpose")
    return readme[start : readme.index("\n## ", start)]


@pytest.mark.parametrize("entry", NEBARI_DOCUMENTED_SERVICES, ids=lambda e: e.service)
def test_every_documented_service_is_rendered_or_explained(entry: Documented, markers: set[str]) -> None:
    assert entry.found or entry.readme, f"{entry.service}: say where it is rendered or why not"
    missing = [marker for marker in entry.found if marker not in markers]
    assert not missing, f"{entry.service} ({DOCS}{entry.page}) is not in the render: {missing}"
    if entry.readme is not None:
        assert entry.readme in _left_out_section(), f"{entry.service}: the README does not say why"


def test_the_markers_are_read_from_the_render(markers: set[str]) -> None:
    """The collector sees what it should (else every entry could pass for the wrong reason)."""
    assert "helm:jupyterhub" in markers and "Deployment/conda-store-server" in markers
    assert not {"helm:nonexistent", "Deployment/nonexistent"} & markers


def test_the_launcher_script_registers_the_links() -> None:
    """The rendered 05-jhub-apps.py, run as z2jh runs it, adds the links as external services."""
    doc = json.loads(
        render_stage(services.STAGE, load_config(EXPLICIT), LOCK, "lockfiles/versions.yaml").files[
            "main.tf.json"
        ]
    )
    values = doc["locals"]["jupyterhub_values"]
    c = Config()
    c.JupyterHub.services = [{"name": "dask-gateway"}]  # z2jh adds hub.services first
    c.JupyterHub.template_paths = []
    fakes = {
        "z2jh": z2jh(values),
        "jhub_apps": module("jhub_apps", theme_template_paths=[]),
        "jhub_apps.configuration": module("jhub_apps.configuration", install_jhub_apps=lambda c, **_: c),
        "kubespawner": module("kubespawner", KubeSpawner=object),
    }
    script = values["hub"]["extraConfig"]["05-jhub-apps.py"].replace("$${", "${")
    with fake_modules(**fakes):
        exec(compile(script, "05-jhub-apps.py", "exec"), {"c": c})
    tiles = {s["name"]: s["info"]["url"] for s in c.JupyterHub.services if s.get("display")}
    assert tiles == {
        "Environments": "/conda-store",
        "Argo": "/argo",
        "Users": "${var.keycloak_url}/admin/${var.realm_id}/console/",
        "Monitoring": "/monitoring",
    }
    assert all(s["info"]["external"] for s in c.JupyterHub.services if s.get("display"))
