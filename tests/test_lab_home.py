"""A new user's home and server settings (issue 17 item 6): skeleton, IPython, page config.

The rendered PROFILES hub script is run (fake `z2jh` serving the rendered chart values, as
in test_services_stage) to get the init container a user's pod starts with; its shell
command then runs for real with `sh` over a temporary folder standing in for the mounted
volumes, with the rendered skeleton ConfigMap laid out the way Kubernetes mounts one
(files behind a `..data` link).
"""

from __future__ import annotations

import json
import os
import subprocess
import types
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from scriptfakes import profile_list, unescape

from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stages import services

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
EXPLICIT = ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml"


def _doc(jhub_apps: bool | None = None) -> dict[str, Any]:
    data = yaml.safe_load(EXPLICIT.read_text())
    if jhub_apps is not None:
        data.setdefault("jhub_apps", {})["enabled"] = jhub_apps
    files = render_stage(services.STAGE, NebariConfig.model_validate(data), LOCK, "x").files
    doc: dict[str, Any] = json.loads(files["main.tf.json"])
    return doc


def _pod(values: dict[str, Any], username: str) -> dict[str, Any]:
    class _User:
        name = username
        groups: tuple[Any, ...] = ()

        async def get_auth_state(self) -> dict[str, Any]:
            return {}

    override: dict[str, Any] = profile_list(values, _User())[0]["kubespawner_override"]
    return override


def _run_init(pod: dict[str, Any], root: Path) -> None:
    (init,) = [i for i in pod["init_containers"] if i["name"] == "initialize-directories"]
    command = init["command"][2]
    for mount in init["volumeMounts"]:
        command = command.replace(mount["mountPath"], str(root / mount["name"]))
    if os.geteuid() != 0:  # chown to the user's uid needs root, as the init container has
        command = command.replace("chown -R 1000:100", "true")
    subprocess.run(["sh", "-c", command], check=True, timeout=30)


def _mount_config_map(folder: Path, data: dict[str, str]) -> None:
    """Lay a ConfigMap out as the kubelet does: ..data -> timestamped dir, files link in."""
    stamp = folder / "..2026_12_06_00_00_00.000"
    stamp.mkdir(parents=True)
    (folder / "..data").symlink_to(stamp.name)
    for name, text in data.items():
        (stamp / name).write_text(text)
        (folder / name).symlink_to(f"..data/{name}")


def test_skeleton_files_land_in_a_new_home_and_never_overwrite_edits(tmp_path: Path) -> None:
    doc = _doc()
    skel = doc["resource"]["kubernetes_config_map"]["etc_skel"]["data"]
    assert set(skel) == {".bashrc", ".profile", ".bash_logout"}
    _mount_config_map(tmp_path / "skel", {k: unescape(v) for k, v in skel.items()})
    pod = _pod(doc["locals"]["jupyterhub_values"], "alice")
    assert {"name": "skel", "configMap": {"name": "etc-skel"}} in pod["volumes"]
    _run_init(pod, tmp_path)
    home = tmp_path / "home" / "home" / "alice"
    assert sorted(p.name for p in home.iterdir()) == [".bash_logout", ".bashrc", ".profile"]
    assert (home / ".bashrc").read_text() == unescape(skel[".bashrc"])
    assert not (home / "..data").exists()
    (home / ".bashrc").write_text("# mine\n")
    _run_init(pod, tmp_path)
    assert (home / ".bashrc").read_text() == "# mine\n"
    # The skeleton's shell files are valid shell.
    for name in skel:
        subprocess.run(["sh", "-n", str(home / name)], check=True, timeout=10)


def test_ipython_reads_its_system_config_from_etc_ipython() -> None:
    doc = _doc()
    mounts = doc["locals"]["jupyterhub_values"]["custom"]["config-mounts"]
    assert {"name": "etc-ipython", "kind": "configmap", "mount_path": "/etc/ipython"} in mounts
    script = unescape(doc["resource"]["kubernetes_config_map"]["etc_ipython"]["data"]["ipython_config.py"])
    c = types.SimpleNamespace(HistoryManager=types.SimpleNamespace())
    with mock.patch.dict(os.environ, {"NB_UMASK": "0002"}), mock.patch("os.umask") as umask:
        exec(compile(script, "ipython_config.py", "exec"), {"c": c})
    assert c.HistoryManager.enabled is False
    umask.assert_called_once_with(0o002)


@pytest.mark.parametrize(("enabled", "disabled"), [(False, True), (True, False)])
def test_page_config_disables_jhub_apps_unless_it_is_deployed(enabled: bool, disabled: bool) -> None:
    doc = _doc(jhub_apps=enabled)
    data = doc["resource"]["kubernetes_config_map"]["jupyterlab_page_config"]["data"]
    assert data == {"page_config.json": "${jsonencode(local.jupyterlab_page_config)}"}
    assert doc["locals"]["jupyterlab_page_config"] == {
        "disabledExtensions": {"jupyterlab-jhub-apps": disabled},
        "lockedExtensions": {},
    }
    mounts = doc["locals"]["jupyterhub_values"]["custom"]["config-mounts"]
    # JupyterLab reads page_config.json from labconfig/ in each Jupyter config folder.
    assert {
        "name": "jupyterlab-page-config",
        "kind": "configmap",
        "mount_path": "/etc/jupyter/labconfig",
    } in mounts
