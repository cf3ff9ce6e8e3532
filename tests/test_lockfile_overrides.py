"""Pins of the installed stagegraph, and a deployment's own small override files on top."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sandboxproject import SandboxProject

from stagegraph.errors import LockfileError
from stagegraph.lockfile import load_lockfile
from stagegraph.lockoverride import load_with_overrides, packaged_lockfile, sync_packaged_copy

ROOT = Path(__file__).resolve().parents[1]


def test_the_packaged_lockfile_equals_the_root_one_doit_bump_edits() -> None:
    assert (ROOT / "src" / "stagegraph" / "lockfiles" / "versions.yaml").read_bytes() == (
        ROOT / "lockfiles" / "versions.yaml"
    ).read_bytes(), "run `cp lockfiles/versions.yaml src/stagegraph/lockfiles/` (doit bump does it)"
    # ...and the installed package finds it where it looks.
    assert packaged_lockfile().read_bytes() == (ROOT / "lockfiles" / "versions.yaml").read_bytes()


def test_bump_keeps_the_packaged_copy_equal(tmp_path: Path) -> None:
    (tmp_path / "lockfiles").mkdir()
    copy = tmp_path / "src" / "stagegraph" / "lockfiles" / "versions.yaml"
    copy.parent.mkdir(parents=True)
    copy.write_text("old\n")
    (tmp_path / "lockfiles" / "versions.yaml").write_text("new\n")
    assert sync_packaged_copy(tmp_path, tmp_path / "lockfiles" / "versions.yaml")
    assert copy.read_text() == "new\n"
    # Another lockfile (STAGEGRAPH_LOCKFILE) never touches the package's copy.
    (tmp_path / "elsewhere.yaml").write_text("other\n")
    assert not sync_packaged_copy(tmp_path, tmp_path / "elsewhere.yaml")
    assert copy.read_text() == "new\n"


def test_an_override_changes_only_the_keys_it_names(tmp_path: Path) -> None:
    base = ROOT / "lockfiles" / "versions.yaml"
    shared = tmp_path / "overrides.yaml"
    shared.write_text(
        'helm_charts:\n  traefik:\n    version: "99.0.0"\nimages:\n  jupyterhub:\n    tag: "x1"\n'
    )
    env = tmp_path / "overrides.dev.yaml"
    # The environment's file goes on top, and setting a pin back to the base clears it.
    original_tag = load_lockfile(base).images["jupyterhub"].tag
    env.write_text(f'images:\n  jupyterhub:\n    tag: "{original_tag}"\n')
    lock, overridden = load_with_overrides(base, [shared, env])
    plain = load_lockfile(base)
    assert lock.helm_charts["traefik"].version == "99.0.0"
    assert lock.helm_charts["traefik"].repository == plain.helm_charts["traefik"].repository
    assert lock.images["jupyterhub"] == plain.images["jupyterhub"]
    assert overridden == {"helm_charts.traefik": str(shared)}
    assert lock.helm_charts.keys() == plain.helm_charts.keys()


def test_a_malformed_override_names_its_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "overrides.yaml"
    bad.write_text("helm_charts:\n  traefik:\n    versoin: '1'\n")
    with pytest.raises(LockfileError, match=r"overrides.yaml: helm_charts.traefik.versoin: .*only the keys"):
        load_with_overrides(ROOT / "lockfiles" / "versions.yaml", [bad])


@pytest.mark.slow
def test_a_deployment_without_a_lockfile_uses_the_packaged_one_and_shows_overrides(tmp_path: Path) -> None:
    p = SandboxProject.create(tmp_path / "p")
    shutil.rmtree(p.root / "lockfiles")
    assert "pins in" in p.doit("validate").stdout
    (p.root / "lockfiles").mkdir()
    (p.root / "lockfiles" / "overrides.yaml").write_text('helm_charts:\n  traefik:\n    version: "99.0.0"\n')
    out = p.doit("validate").stdout
    assert (
        "pin helm_charts.traefik overridden in lockfiles/overrides.yaml (used by 04-kubernetes-ingress)"
        in out
    )
    graph = p.doit("graph").stdout
    assert "helm_charts.traefik (overridden)" in graph
    p.doit("render")
    assert '"99.0.0"' in (p.root / "stages" / "04-kubernetes-ingress" / "main.tf.json").read_text()
    refused = p.doit("bump", "--apply", check=False)
    assert refused.returncode != 0 and "pins of the installed stagegraph" in refused.stdout
