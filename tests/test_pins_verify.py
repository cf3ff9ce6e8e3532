"""`doit verify_pins` against the local fake: every chart, image and provider still exists?"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pins_fakeregistry import FakeRegistry, fake_registry, repo_project, serve_lockfile  # noqa: F401 - the fixtures `fake`, `project`

from stagegraph.lockfile import load_lockfile
from stagegraph.pins.errors import LookupFailedError, PinsMissingError
from stagegraph.pins.tasks import run_verify

ROOT = Path(__file__).resolve().parents[1]


def line_of(text: str, needle: str, after: str) -> int:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == after)
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def test_everything_present(fake: FakeRegistry, project: object) -> None:
    registries = serve_lockfile(fake, project.lock)  # type: ignore[attr-defined]
    out = run_verify(project, registries)  # type: ignore[arg-type]
    lock = project.lock  # type: ignore[attr-defined]
    count = len(lock.helm_charts) + len(lock.images) + len(lock.providers) + 1  # + kind node image
    assert (
        out == f"verify_pins: all {count} pinned charts, images and providers exist upstream (16 registries)"
    )
    # Images are checked with HEAD (free on Docker Hub), never by pulling manifests.
    assert {s.method for s in fake.seen if "/manifests/" in s.path} == {"HEAD"}
    # Python and Terraform pins are not deploy-time downloads: not checked.
    assert not any(s.path.startswith(("/pypi-host/", "/hc/")) for s in fake.seen)


def test_missing_chart_image_and_provider_are_each_reported_with_where_used(
    fake: FakeRegistry, project: object
) -> None:
    drop = ("helm_charts.minio", "images.kuberhealthy", "providers.keycloak")
    registries = serve_lockfile(fake, project.lock, drop=drop)  # type: ignore[attr-defined]
    with pytest.raises(PinsMissingError) as err:
        run_verify(project, registries)  # type: ignore[arg-type]
    text = (ROOT / "lockfiles" / "versions.yaml").read_text()
    minio = line_of(text, 'version: "5.3.0"', "minio:")
    kh = line_of(text, 'tag: "v2.7.1"', "kuberhealthy:")
    kc = line_of(text, 'version: "5.1.1"', "keycloak:")
    lock = project.lock  # type: ignore[attr-defined]
    checked = len(lock.providers) + len(lock.helm_charts) + len(lock.images) + 1  # + kind node image
    assert str(err.value).splitlines() == [
        f"lockfiles/versions.yaml:{kc}: providers.keycloak 5.1.1: provider keycloak/keycloak 5.1.1 not in the "
        "registry; used by 06-kubernetes-keycloak-configuration",
        f"lockfiles/versions.yaml:{minio}: helm_charts.minio 5.3.0: minio 5.3.0 not in the index of "
        "https://charts.min.io (dropped upstream?); used by 07-kubernetes-services",
        f"lockfiles/versions.yaml:{kh}: images.kuberhealthy v2.7.1: docker.io/kuberhealthy/kuberhealthy:v2.7.1 "
        "not in docker.io; used by 10-kubernetes-kuberhealthy",
        f"verify_pins: 3 of {checked} pinned versions no longer exist upstream; pin versions that exist "
        "(`doit bump --group <group>` proposes some) and re-run",
    ]
    assert err.value.missing == 3


def test_group_limits_the_check(fake: FakeRegistry, project: object) -> None:
    registries = serve_lockfile(fake, project.lock, drop=("helm_charts.minio",))  # type: ignore[attr-defined]
    out = run_verify(project, registries, group="providers")  # type: ignore[arg-type]
    assert out.startswith(f"verify_pins: all {len(project.lock.providers)} pinned")  # type: ignore[attr-defined]
    assert [s.path for s in fake.seen if s.path.startswith("/helm/")] == []


def test_registry_down_is_a_lookup_failure_not_a_missing_pin(fake: FakeRegistry, project: object) -> None:
    registries = serve_lockfile(fake, project.lock)  # type: ignore[attr-defined]
    fake.add("/helm/charts.min.io/index.yaml", lambda _s: (503, {}, b"maintenance"))
    with pytest.raises(LookupFailedError) as err:
        run_verify(project, registries)  # type: ignore[arg-type]
    assert str(err.value).splitlines()[0].startswith("helm_charts.minio: 127.0.0.1:")
    assert (
        str(err.value).splitlines()[-1] == "verify_pins: 1 lookup(s) failed; these pins could not be checked"
    )


def test_lockfile_in_repo_is_checkable() -> None:
    """Every verified pin of the real lockfile has a kind the checker knows."""
    from stagegraph.pins.sources import VERIFIED_KINDS, kind_of

    lock = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
    keys = lock.keys()  # the Lockfile method, not a dict view
    kinds = {kind_of(k, lock.pin(k)) for k in keys}
    assert set(VERIFIED_KINDS) <= kinds
