"""A phased JupyterHub major-version migration on the sandbox (stagegraph.migrations).

Three config changes, three ordinary deploys: each re-applies only the stages the phase
touches (07, which renders the hubs, and 06, which holds their login callbacks), and the
render of each phase shows where each version answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandboxproject import SandboxProject

HUB_ROOT = "Path(`/`) || PathPrefix(`/hub`) || PathPrefix(`/user`) || PathPrefix(`/services`)"


def services(project: SandboxProject) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (project.root / "stages" / "07-kubernetes-services" / "main.tf.json").read_text()
    )
    return data


def releases(doc: dict[str, Any]) -> dict[str, str]:
    """Hub release name -> chart version, as rendered (not jupyterhub-ssh and the like)."""
    res = doc["resource"]["terraform_data"]
    return {
        body["input"]["name"]: body["input"]["version"]
        for key, body in res.items()
        if key in ("helm_release__jupyterhub", "helm_release__jupyterhub_n3")
    }


def routes(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """IngressRoute name -> (match, service) for the hub routes."""
    out = {}
    for key, manifest in doc["locals"].items():
        if key.startswith("route_jupyterhub") and key.endswith("_manifest"):
            rule = manifest["spec"]["routes"][0]
            if manifest["metadata"]["name"] in ("jupyterhub", "jupyterhub-n3", "jupyterhub-n2"):
                out[manifest["metadata"]["name"]] = (rule["match"], rule["services"][0]["name"])
    return out


def callbacks(project: SandboxProject) -> list[str]:
    doc = json.loads(
        (project.root / "stages" / "06-kubernetes-keycloak-configuration" / "main.tf.json").read_text()
    )
    client = doc["resource"]["terraform_data"]["keycloak_openid_client__jupyterhub"]["input"]
    return [uri.removeprefix("${var.base_url}") for uri in client["valid_redirect_uris"]]


def set_phase(project: SandboxProject, phase: str) -> None:
    project.edit_config(lambda c: c.setdefault("jupyterhub", {}).update(next_major={"phase": phase}))


def test_three_phases_each_apply_only_what_they_touch(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    project.doit("deploy")
    before = services(project)
    assert releases(before) == {"jupyterhub": "4.0.0"}

    set_phase(project, "beside")
    project.doit("deploy")
    assert project.applied_in_last_run() == {"06-kubernetes-keycloak-configuration", "07-kubernetes-services"}
    doc = services(project)
    assert set(releases(doc)) == {"jupyterhub", "jupyterhub-n3"}
    assert doc["locals"]["jupyterhub_n3_values"]["hub"]["baseUrl"] == "/n3/"
    assert doc["locals"]["jupyterhub_n3_values"]["fullnameOverride"] == "jupyterhub-n3"
    assert "baseUrl" not in doc["locals"]["jupyterhub_values"]["hub"]
    got = routes(doc)
    assert got["jupyterhub"] == (f"Host(`${{var.domain}}`) && ({HUB_ROOT})", "proxy-public")
    assert got["jupyterhub-n3"] == (
        "Host(`${var.domain}`) && (PathPrefix(`/n3`))",
        "jupyterhub-n3-proxy-public",
    )
    assert callbacks(project) == ["/hub/oauth_callback", "/n3/hub/oauth_callback"]
    oauth = doc["locals"]["jupyterhub_n3_values"]["hub"]["config"]["GenericOAuthenticator"]
    assert oauth["oauth_callback_url"] == "https://${var.domain}/n3/hub/oauth_callback"
    notes = project.doit("migrations").stdout
    assert "Announce /n3" in notes and "shut down their server on one route" in notes

    set_phase(project, "switched")
    project.doit("deploy")
    assert project.applied_in_last_run() == {"06-kubernetes-keycloak-configuration", "07-kubernetes-services"}
    doc = services(project)
    got = routes(doc)
    assert got["jupyterhub"][1] == "jupyterhub-n3-proxy-public"  # / is the next version now
    assert got["jupyterhub-n2"] == ("Host(`${var.domain}`) && (PathPrefix(`/n2`))", "proxy-public")
    assert doc["locals"]["jupyterhub_values"]["hub"]["baseUrl"] == "/n2/"
    assert "baseUrl" not in doc["locals"]["jupyterhub_n3_values"]["hub"]
    assert callbacks(project) == ["/hub/oauth_callback", "/n2/hub/oauth_callback"]
    # Dask Gateway authenticates against the hub that serves /.
    gateway = doc["locals"]["dask_gateway_values"]["gateway"]["auth"]["jupyterhub"]
    assert gateway["apiTokenFromSecretName"] == "jupyterhub-n3-hub"
    assert "shut down their servers" in project.doit("migrations").stdout

    set_phase(project, "retired")
    project.doit("deploy")
    assert project.applied_in_last_run() == {"06-kubernetes-keycloak-configuration", "07-kubernetes-services"}
    doc = services(project)
    assert set(releases(doc)) == {"jupyterhub-n3"}
    assert set(routes(doc)) == {"jupyterhub"}
    assert callbacks(project) == ["/hub/oauth_callback"]
    state = (project.root / "stages" / "07-kubernetes-services" / "terraform.tfstate").read_text()
    assert '"name": "helm_release__jupyterhub"' not in state  # the old release is gone from the state
    assert '"name": "helm_release__jupyterhub_n3"' in state
