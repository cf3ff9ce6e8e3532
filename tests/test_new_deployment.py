"""`stagegraph new DIR`, then `doit deploy` in that folder, offline, as a new user would.

"Offline" is enforced, not assumed: every HTTP(S) request of the run goes to a proxy at a
closed port on 127.0.0.1, so anything that tried the network would fail the deploy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sandboxproject import git

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("STAGEGRAPH_CONFIG", None)
    env.pop("STAGEGRAPH_LOCKFILE", None)
    closed = "http://127.0.0.1:9"
    env.update(
        NO_COLOR="1",
        SOPS_AGE_KEY_FILE=str(tmp_path / "age" / "keys.txt"),  # never the user's own key
        HTTP_PROXY=closed,
        HTTPS_PROXY=closed,
        http_proxy=closed,
        https_proxy=closed,
        NO_PROXY="",
        CHECKPOINT_DISABLE="1",
    )
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_new_deployment_deploys_offline_and_keeps_state_out_ofgit(tmp_path: Path) -> None:
    env = _env(tmp_path)
    target = tmp_path / "team-platform"
    script = Path(sys.executable).parent / "stagegraph"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "stagegraph"]
    # A relative folder, as a user types it (SOPS runs inside the new folder).
    made = _run([*command, "new", "team-platform", "--project-name", "team"], tmp_path, env)
    assert made.returncode == 0, made.stderr
    assert "next: cd team-platform && doit deploy" in made.stdout
    for name in ("dodo.py", "nebari-config.yaml", ".gitignore", "README.md", "secrets/.sops.yaml"):
        assert (target / name).is_file(), name
    key = tmp_path / "age" / "keys.txt"
    assert key.exists() and key.stat().st_mode & 0o077 == 0
    config = (target / "nebari-config.yaml").read_text()
    assert "project_name: team" in config and "secrets/keycloak.enc.yaml" in config
    assert not (target / "lockfiles").exists()  # pins come from the installed stagegraph

    deploy = _run([sys.executable, "-m", "doit", "deploy"], target, env)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert "deploy: 10 applied" in deploy.stdout
    assert (target / "stages" / "04-kubernetes-ingress" / "terraform.tfstate").exists()

    # The render is committed; state, records and logs are not; a no-op deploy leaves git clean.
    git(target, "init", "-q", ".")
    git(target, "add", "-A")
    tracked = git(target, "ls-files").split()
    assert "stages/04-kubernetes-ingress/main.tf.json" in tracked
    assert "secrets/keycloak.enc.yaml" in tracked
    assert not [t for t in tracked if "tfstate" in t or t.startswith(".stagegraph/") or "/.terraform/" in t]
    git(target, "commit", "-qm", "new deployment")
    again = _run([sys.executable, "-m", "doit", "deploy"], target, env)
    assert again.returncode == 0 and "10 skipped" in again.stdout
    assert git(target, "status", "--porcelain") == ""

    # An existing deployment is never overwritten.
    before = (target / "nebari-config.yaml").read_bytes()
    refused = _run([*command, "new", str(target)], tmp_path, env)
    assert refused.returncode == 1
    assert "already there; pick an empty folder (nothing was written)" in refused.stderr
    assert (target / "nebari-config.yaml").read_bytes() == before


def test_a_bad_choice_writes_nothing(tmp_path: Path) -> None:
    env = _env(tmp_path)
    proc = _run(
        [sys.executable, "-m", "stagegraph", "new", str(tmp_path / "x"), "--provider", "nope"], tmp_path, env
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error: ")
    assert not (tmp_path / "x").exists() and not (tmp_path / "age").exists()


def test_the_wheel_carries_the_lockfile(tmp_path: Path) -> None:
    """A non-editable install has the pins that `stagegraph new` deployments use: the wheel,
    unpacked ahead of this checkout on sys.path, makes a deployment that validates."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("stagegraph-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert (
            archive.read("stagegraph/lockfiles/versions.yaml")
            == (ROOT / "lockfiles" / "versions.yaml").read_bytes()
        )
        entry_points = next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        assert "stagegraph = stagegraph.cli:main" in archive.read(entry_points).decode()

    installed = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(installed)
    env = {**_env(tmp_path), "PYTHONPATH": str(installed)}
    target = tmp_path / "d"
    where = _run([sys.executable, "-c", "import stagegraph; print(stagegraph.__file__)"], tmp_path, env)
    assert where.stdout.startswith(str(installed))
    assert _run([sys.executable, "-m", "stagegraph", "new", str(target)], tmp_path, env).returncode == 0
    valid = _run([sys.executable, "-m", "doit", "validate"], target, env)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert f"pins in {installed / 'stagegraph' / 'lockfiles' / 'versions.yaml'}" in valid.stdout
