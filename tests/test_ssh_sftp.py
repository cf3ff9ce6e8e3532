"""jupyterhub-ssh and SFTP (issue 17 item 1): a user's path from port 8022/8023 to a pod.

Follows the render the way the traffic goes: Traefik's entrypoint (04) -> IngressRouteTCP
on that entrypoint (07) -> a Service port -> the target port a container declares, in a
Deployment whose labels the Service selects; the pods read the hub URL and the host key
from what the render mounts. Kubernetes and CRD schemas are `doit check`'s job
(test_checks_fixtures runs it on every fixture config).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stagegraph.configfile import load_config
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.stages import ingress, services

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
EXPLICIT = ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml"


def _doc(stage: Any) -> dict[str, Any]:
    files = render_stage(stage, load_config(EXPLICIT), LOCK, "lockfiles/versions.yaml").files
    doc: dict[str, Any] = json.loads(files["main.tf.json"])
    return doc


def _objects(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        body
        for key, body in doc["locals"].items()
        if key.endswith("_manifest") and isinstance(body, dict) and body.get("kind") == kind
    ]


@pytest.mark.parametrize(("entrypoint", "port"), [("ssh", 8022), ("sftp", 8023)])
def test_the_public_port_reaches_a_container(entrypoint: str, port: int) -> None:
    traefik = _doc(ingress.STAGE)["locals"]["traefik_values"]["ports"][entrypoint]
    assert traefik == {"port": port, "expose": {"default": True}, "exposedPort": port}
    doc = _doc(services.STAGE)
    (route,) = [r for r in _objects(doc, "IngressRouteTCP") if r["spec"]["entryPoints"] == [entrypoint]]
    (target,) = route["spec"]["routes"][0]["services"]
    (svc,) = [s for s in _objects(doc, "Service") if s["metadata"]["name"] == target["name"]]
    (svc_port,) = [p for p in svc["spec"]["ports"] if p["port"] == target["port"]]
    (dep,) = [
        d
        for d in _objects(doc, "Deployment")
        if svc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    container_ports = [p["name"] for c in dep["spec"]["template"]["spec"]["containers"] for p in c["ports"]]
    assert svc_port["targetPort"] in container_ports


def test_ssh_and_sftp_find_the_hub_and_their_host_key() -> None:
    doc = _doc(services.STAGE)
    config = doc["locals"]["jupyterhub_ssh_config"]
    # The hub's API in-cluster: the JupyterHub chart's proxy Service.
    assert config["hubUrl"] == "http://proxy-public.${var.namespace}"
    key_path = config["ssh"]["config"]["JupyterHubSSH"]["host_key_path"]
    (ssh,) = [d for d in _objects(doc, "Deployment") if d["metadata"]["name"] == "jupyterhub-ssh"]
    mounts = {
        m["name"]: m["mountPath"] for m in ssh["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert key_path == f"{mounts['secrets']}/jupyterhub-ssh.host-key"
    secrets = doc["resource"]["kubernetes_secret"]
    assert secrets["jupyterhub_ssh"]["data"] == {
        "jupyterhub-ssh.host-key": "${tls_private_key.jupyterhub_ssh.private_key_pem}"
    }
    assert (
        secrets["jupyterhub_sftp"]["data"]["hostKey"] == "${tls_private_key.jupyterhub_ssh.private_key_pem}"
    )
    # The values file the ssh server reads is the rendered local, YAML-encoded.
    cm = doc["resource"]["kubernetes_config_map"]["jupyterhub_ssh"]["data"]
    assert cm == {"values.yaml": "${yamlencode(local.jupyterhub_ssh_config)}"}
    assert yaml.safe_load(yaml.safe_dump(config))["hubUrl"] == config["hubUrl"]


def test_sftp_serves_the_shared_home_volume_users_mount() -> None:
    doc = _doc(services.STAGE)
    (sftp,) = [d for d in _objects(doc, "Deployment") if d["metadata"]["name"] == "jupyterhub-sftp"]
    volumes = {v["name"]: v for v in sftp["spec"]["template"]["spec"]["volumes"]}
    hub_custom = doc["locals"]["jupyterhub_values"]["custom"]
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == hub_custom["shared-pvc"]
    assert volumes["secrets"]["secret"]["defaultMode"] == 0o600
    images = {c["image"] for c in sftp["spec"]["template"]["spec"]["containers"]}
    pin = LOCK.images["jupyterhub_sftp"]
    assert images == {f"{pin.image}:{pin.tag}"}


def test_no_host_key_in_the_render() -> None:
    files = render_stage(services.STAGE, load_config(EXPLICIT), LOCK, "lockfiles/versions.yaml").files
    assert not any(b"PRIVATE KEY" in data for data in files.values())
