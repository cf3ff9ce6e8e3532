"""The central lockfile: loads, addresses pins by key, and fails with file + key."""

from __future__ import annotations

from pathlib import Path

import pytest

from stagegraph.errors import LockfileError
from stagegraph.lockfile import ChartPin, load_lockfile
from stagegraph.stages.builtin import BUILTIN_STAGES

ROOT = Path(__file__).resolve().parents[1]
LOCKFILE = ROOT / "lockfiles" / "versions.yaml"


def test_every_pin_a_stage_declares_exists() -> None:
    lock = load_lockfile(LOCKFILE)
    for stage in BUILTIN_STAGES:
        for key in stage.pins:
            lock.pin(key, user=stage.name)


def test_chart_pin_shape() -> None:
    pin = load_lockfile(LOCKFILE).pin("helm_charts.traefik")
    assert isinstance(pin, ChartPin)
    assert pin.repository.startswith("https://") and pin.version


def test_missing_pin_names_file_key_and_user() -> None:
    lock = load_lockfile(LOCKFILE)
    with pytest.raises(LockfileError) as err:
        lock.pin("helm_charts.nope", file="lockfiles/versions.yaml", user="stage 04-kubernetes-ingress")
    assert str(err.value).startswith(
        "lockfiles/versions.yaml: helm_charts.nope: no such pin (used by stage 04-kubernetes-ingress)"
    )


def test_missing_and_malformed_lockfile(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="lockfile not found"):
        load_lockfile(tmp_path / "versions.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("terraform: [\n")
    with pytest.raises(LockfileError, match=r"bad.yaml: not valid YAML at line \d+ column \d+"):
        load_lockfile(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("terraform: {version: '1.5.7'}\nkubernetes: {}\n")
    with pytest.raises(LockfileError, match=r"wrong.yaml: kubernetes.max_version: Field required"):
        load_lockfile(wrong)


def test_versions_are_quoted_strings_in_the_file() -> None:
    """A bare 1.10 would be read as the float 1.1: every version must be quoted."""
    import re

    for line in LOCKFILE.read_text().splitlines():
        m = re.match(r"\s*(version|tag):\s*(\S+)", line)
        if m:
            assert m.group(2).startswith('"'), line
