"""JupyterLab's scheduler on Argo Workflows (issue 17 item 6, the Argo RFD for Jupyter users).

Follows a scheduled notebook: the server's Jupyter config picks argo-jupyter-scheduler;
the user's pod (from the rendered PROFILES script) carries the Argo and conda-store
variables; the conda-store Service named in them exists at that port; conda-store (its
rendered config run with the token in its environment) accepts the token read-only.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import yaml
from scriptfakes import Config, conda_store_config, fake_modules, module, profile_list, unescape

from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stages import services

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
EXPLICIT = ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml"


def _doc(argo: bool) -> dict[str, Any]:
    data = yaml.safe_load(EXPLICIT.read_text())
    data["argo_workflows"]["enabled"] = argo
    files = render_stage(services.STAGE, NebariConfig.model_validate(data), LOCK, "x").files
    doc: dict[str, Any] = json.loads(files["main.tf.json"])
    return doc


def _environment(doc: dict[str, Any], groups: list[str]) -> dict[str, Any]:
    values = doc["locals"]["jupyterhub_values"]

    class _User:
        name = "dev1"

        def __init__(self) -> None:
            self.groups = [types.SimpleNamespace(name=g) for g in groups]

        async def get_auth_state(self) -> dict[str, Any]:
            return {}

    env: dict[str, Any] = profile_list(values, _User())[0]["kubespawner_override"]["environment"]
    return env


def test_jupyter_server_config_hands_jobs_to_argo() -> None:
    doc = _doc(argo=True)
    etc = doc["resource"]["kubernetes_config_map"]["etc_jupyter"]["data"]
    executor, scheduler = type("ArgoExecutor", (), {}), type("ArgoScheduler", (), {})
    c = Config()
    fakes = {
        "argo_jupyter_scheduler": module("argo_jupyter_scheduler"),
        "argo_jupyter_scheduler.executor": module("e", ArgoExecutor=executor),
        "argo_jupyter_scheduler.scheduler": module("s", ArgoScheduler=scheduler),
    }
    with fake_modules(**fakes):
        exec(compile(unescape(etc["jupyter_server_config.py"]), "jupyter_server_config.py", "exec"), {"c": c})
    assert c.Scheduler.execution_manager_class is executor
    assert c.SchedulerApp.scheduler_class is scheduler
    assert scheduler.use_conda_store_env is True  # type: ignore[attr-defined]
    assert (
        "jupyter_server_config.py"
        not in _doc(argo=False)["resource"]["kubernetes_config_map"]["etc_jupyter"]["data"]
    )


def test_a_developers_pod_reaches_argo_and_conda_store() -> None:
    doc = _doc(argo=True)
    env = _environment(doc, ["developer"])
    assert env["ARGO_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "argo-developer.service-account-token"
    secret = doc["resource"]["kubernetes_secret"]["argo_workflows_conda_store_token"]
    assert secret["metadata"][0]["name"] == "argo-workflows-conda-store-token"
    data = secret["data"]
    for var in ("CONDA_STORE_TOKEN", "CONDA_STORE_SERVICE", "CONDA_STORE_SERVICE_NAMESPACE"):
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "argo-workflows-conda-store-token" and ref["key"] in data
    assert data["conda-store-api-token"] == "${random_password.argo_scheduler_conda_store_token.result}"
    # argo-jupyter-scheduler splits `name:port` and calls http://name.namespace.svc:port/conda-store/.
    name, port = data["conda-store-service-name"].split(":")
    service = doc["locals"]["conda_store_service_manifest"]
    assert service["metadata"]["name"] == name
    assert int(port) in [p["port"] for p in service["spec"]["ports"]]
    assert data["conda-store-service-namespace"] == service["metadata"]["namespace"]
    # Users outside every Argo group get neither Argo nor the conda-store token.
    assert "CONDA_STORE_TOKEN" not in _environment(doc, ["pycon"])


def test_conda_store_accepts_the_token_read_only() -> None:
    doc = _doc(argo=True)
    config = doc["resource"]["kubernetes_config_map"]["conda_store_config"]["data"]["conda_store_config.py"]
    deployment = doc["locals"]["conda_store_server_manifest"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (env,) = [e for e in container["env"] if e["name"] == "CONDA_STORE_ARGO_SCHEDULER_TOKEN"]
    assert env["valueFrom"]["secretKeyRef"] == {
        "name": "argo-workflows-conda-store-token",
        "key": "conda-store-api-token",
    }
    token = {e["name"]: "x" for e in container["env"]} | {"CONDA_STORE_ARGO_SCHEDULER_TOKEN": "tok"}
    c, _ = conda_store_config(config, doc["locals"]["conda_store_settings"], token)
    assert c.AuthenticationBackend.predefined_tokens == {
        "tok": {"primary_namespace": "default", "role_bindings": {"*/*": ["viewer"]}}
    }


def test_without_argo_no_token_is_made() -> None:
    doc = _doc(argo=False)
    assert "argo_workflows_conda_store_token" not in doc["resource"].get("kubernetes_secret", {})
    assert "argo_scheduler_conda_store_token" not in doc["resource"].get("random_password", {})
    container = doc["locals"]["conda_store_server_manifest"]["spec"]["template"]["spec"]["containers"][0]
    names = [e["name"] for e in container["env"]]
    assert "CONDA_STORE_ARGO_SCHEDULER_TOKEN" not in names and "CONDA_STORE_OAUTH_CLIENT_SECRET" in names
