"""The example plugin, installed with pip into a fresh environment, deploying the sandbox.

What a user does: `pip install plugins/examples/stagegraph-hello`, enable it in the config,
`doit list`, `doit deploy`, `doit hello`. The environment is a new venv that sees the
packages of the Python running the tests (stagegraph and its dependencies, whether that
Python is a venv or not) and gets only the plugin installed, from a copy of its folder,
offline (no index, no build isolation).
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sandboxproject import ROOT, SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PLUGIN = ROOT / "plugins" / "examples" / "stagegraph-hello"


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    where = tmp_path_factory.mktemp("hello-venv")
    # Install from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = shutil.copytree(PLUGIN, where / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # The new venv must see *this* interpreter's packages (stagegraph, setuptools, wheel).
    # `--system-site-packages` would not do it when this is itself a venv: the new one gets
    # the base interpreter's site-packages. A .pth line runs `site.addsitedir` for each of
    # ours, which also processes their own .pth files (the editable install of stagegraph).
    own = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = [d for d in [*site.getsitepackages(), site.getusersitepackages()] if Path(d).is_dir()]
    Path(own, "_outer_site_packages.pth").write_text(
        "".join(f"import site; site.addsitedir({d!r})\n" for d in ours)
    )
    proc = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"pip install of the example plugin failed:\n{proc.stdout}\n{proc.stderr}"
    return python


def project(where: Path, python: str, **plugins: Any) -> SandboxProject:
    p = SandboxProject.create(where)
    p.python = python
    if plugins:
        p.edit_config(lambda c: c.setdefault("stagegraph", {}).update(plugins=plugins))
    return p


def listed(p: SandboxProject) -> list[str]:
    return [line.split()[0] for line in p.doit("list").stdout.splitlines() if line.strip()]


def test_installed_but_not_enabled_changes_nothing(tmp_path: Path, venv_python: str) -> None:
    p = project(tmp_path / "p", venv_python)
    assert "045-hello" not in listed(p)
    out = p.doit("plugins").stdout
    assert "hello 0.1.0: not enabled (entry point stagegraph_hello.plugin (package stagegraph-hello))" in out
    assert "  stages: 045-hello (priority 45; needs 02-infrastructure, 03-kubernetes-initialize," in out
    assert "  tasks: hello\n  settings: stagegraph.plugins.settings.hello" in out


def test_enabled_its_stage_lands_between_ingress_and_keycloak(tmp_path: Path, venv_python: str) -> None:
    p = project(tmp_path / "p", venv_python, enabled=["hello"])
    names = listed(p)
    at = names.index("045-hello")
    assert names[at - 1 : at + 2] == ["04-kubernetes-ingress", "045-hello", "05-kubernetes-keycloak"]
    assert "hello" in names  # its subcommand
    assert "hello 0.1.0: enabled" in p.doit("plugins").stdout


def test_its_stage_deploys_incrementally_and_its_task_reads_the_result(
    tmp_path: Path, venv_python: str
) -> None:
    p = project(tmp_path / "p", venv_python, enabled=["hello"], settings={"hello": {"greeting": "Bonjour"}})
    p.doit("deploy", "--stop-at", "045-hello")
    assert "045-hello" in p.applied_in_last_run()
    record = p.records()["045-hello"]
    assert record["outputs"] == {
        "message": "Bonjour, world, from https://demo.example.com",
        "config_map": "hello",
    }
    assert p.doit("hello").stdout == "Bonjour, world, from https://demo.example.com\n"

    p.doit("deploy", "--stop-at", "045-hello")
    assert p.applied_in_last_run() == set()

    # Its own config section re-applies it, and only it.
    p.edit_config(lambda c: c["stagegraph"]["plugins"]["settings"]["hello"].update(audience="tout le monde"))
    assert "config:stagegraph.plugins.settings: changed" in p.doit("why", "045-hello").stdout
    p.doit("deploy", "--stop-at", "045-hello")
    assert p.applied_in_last_run() == {"045-hello"}
    assert (
        p.records()["045-hello"]["outputs"]["message"]
        == "Bonjour, tout le monde, from https://demo.example.com"
    )


def test_a_typo_in_its_section_is_a_config_error(tmp_path: Path, venv_python: str) -> None:
    p = project(tmp_path / "p", venv_python, enabled=["hello"], settings={"hello": {"greting": "Hi"}})
    proc = p.doit("validate", check=False)
    assert proc.returncode != 0
    assert (
        "error: nebari-config.yaml: stagegraph.plugins.settings.hello.greting: unknown key; "
        "did you mean 'greeting'? (got 'Hi')"
    ) in proc.stdout + proc.stderr
    proc = p.doit("deploy", check=False)
    assert proc.returncode != 0 and "stagegraph.plugins.settings.hello.greting" in proc.stdout + proc.stderr
    assert p.records() == {}  # nothing was applied with a config that does not validate


def test_the_same_config_where_the_plugin_is_missing_fails_naming_it(tmp_path: Path) -> None:
    from importlib.metadata import entry_points

    if any(ep.name == "hello" for ep in entry_points(group="stagegraph")):
        pytest.skip("the example plugin is installed in this environment too")
    p = project(tmp_path / "p", sys.executable, enabled=["hello"])
    proc = p.doit("validate", check=False)
    assert proc.returncode != 0
    assert (
        "error: nebari-config.yaml: stagegraph.plugins.enabled: plugin 'hello' is not installed;"
    ) in proc.stdout + proc.stderr
    # `doit list` stays usable, with the built-in stages.
    assert "045-hello" not in listed(p) and "04-kubernetes-ingress" in listed(p)
