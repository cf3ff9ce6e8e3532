"""Registry clients against the local fake: formats, paging, tokens and every failure mode."""

from __future__ import annotations

import socket
import time
from datetime import date

import pytest
from test_pins_fakeregistry import FakeRegistry, fake_registry, slow  # noqa: F401 - the fixture `fake`

from stagegraph.lockfile import ChartPin, ImagePin, ProviderPin, VersionPin
from stagegraph.pins.errors import (
    LookupFailedError,
    RegistryError,
    RegistryNotFoundError,
    RegistryOfflineError,
    RegistryRateLimitedError,
    RegistryServerError,
)
from stagegraph.pins.httpclient import HttpClient, retry_after_seconds
from stagegraph.pins.oci import parse_image
from stagegraph.pins.registries import Registries
from stagegraph.pins.sources import Sources


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def registries(fake: FakeRegistry) -> Registries:
    return Registries(
        terraform=f"{fake.url}/tf",
        releases=f"{fake.url}/hc",
        pypi=f"{fake.url}/pypi-host",
        oci={"docker.io": f"{fake.url}/hub", "quay.io": f"{fake.url}/quay", "ghcr.io": f"{fake.url}/ghcr"},
    )


def sources(fake: FakeRegistry, *, timeout: float = 5.0, retries: int = 2) -> tuple[Sources, Sleeps]:
    sleeps = Sleeps()
    http = HttpClient(timeout=timeout, retries=retries, backoff=0.5, sleep=sleeps)
    return Sources(registries(fake), http), sleeps


# --- image names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "host", "repository"),
    [
        ("docker.io/library/traefik", "docker.io", "library/traefik"),
        ("traefik", "docker.io", "library/traefik"),
        ("kindest/node", "docker.io", "kindest/node"),
        ("quay.io/keycloak/keycloak", "quay.io", "keycloak/keycloak"),
        ("ghcr.io/org/charts/app", "ghcr.io", "org/charts/app"),
        ("localhost:5000/x/y", "localhost:5000", "x/y"),
        ("oci://registry-1.docker.io/bitnamicharts/minio", "registry-1.docker.io", "bitnamicharts/minio"),
    ],
)
def test_parse_image(image: str, host: str, repository: str) -> None:
    ref = parse_image(image)
    assert (ref.host, ref.repository) == (host, repository)


# --- OCI ----------------------------------------------------------------------------------------


def test_oci_tags_follow_token_challenge_and_link_pagination(fake: FakeRegistry) -> None:
    tags = [f"v3.{i}.0" for i in range(7)] + ["latest"]
    fake.oci_repo("/hub", "library/traefik", tags, page=3)
    src, _ = sources(fake)
    pin = ImagePin(image="docker.io/library/traefik", tag="v3.2.0")
    got = [r.version for r in src.releases("images.traefik", pin)]
    assert sorted(got) == sorted(tags)
    assert fake.hits("/hub/token") == 1  # one token, reused for every page
    pages = [s for s in fake.seen if s.path.endswith("/tags/list") and s.headers.get("authorization")]
    assert len(pages) == 3


def test_oci_without_token_and_existence_by_head(fake: FakeRegistry) -> None:
    fake.oci_repo("/quay", "keycloak/keycloak", ["26.0.7", "26.0.8"], token=False)
    src, _ = sources(fake)
    assert src.missing("images.keycloak", ImagePin(image="quay.io/keycloak/keycloak", tag="26.0.7")) == ""
    gone = src.missing("images.keycloak", ImagePin(image="quay.io/keycloak/keycloak", tag="25.0.0"))
    assert gone == "quay.io/keycloak/keycloak:25.0.0 not in quay.io"
    assert {s.method for s in fake.seen if "/manifests/" in s.path} == {"HEAD"}


def test_oci_created_date_from_config_blob(fake: FakeRegistry) -> None:
    fake.oci_repo("/ghcr", "nebari/app", ["1.0.0"], created={"1.0.0": "2024-11-20T09:15:43.1Z"})
    src, _ = sources(fake)
    assert src.released("images.app", ImagePin(image="ghcr.io/nebari/app", tag="1.0.0"), "1.0.0") == date(
        2024, 11, 20
    )
    # A date is best effort: a broken lookup leaves it unknown instead of failing.
    assert src.released("images.app", ImagePin(image="ghcr.io/nebari/gone", tag="1"), "1") is None


def test_oci_missing_repository_is_404_naming_it(fake: FakeRegistry) -> None:
    src, _ = sources(fake)
    with pytest.raises(RegistryNotFoundError) as err:
        src.releases("images.x", ImagePin(image="quay.io/nebari/nope", tag="1.0"))
    assert (
        str(err.value)
        == f"images.x: 127.0.0.1:{fake.url.rsplit(':', 1)[1]}: 404: quay.io/nebari/nope not in quay.io"
    )


def test_oci_refused_token_reads_as_missing_or_private(fake: FakeRegistry) -> None:
    fake.oci_repo("/ghcr", "org/private", ["1.0"])
    fake.add("/ghcr/token", lambda _s: (200, {}, b'{"token": "wrong"}'))
    src, _ = sources(fake)
    with pytest.raises(RegistryNotFoundError, match="does not exist or is not public"):
        src.releases("images.p", ImagePin(image="ghcr.io/org/private", tag="1.0"))


# --- Helm -----------------------------------------------------------------------------------------


def test_helm_index_versions_dates_and_one_fetch_per_repository(fake: FakeRegistry) -> None:
    repo = fake.helm_repo(
        "/grafana",
        {
            "loki": [("6.23.0", "2024-12-01T10:00:00.5Z"), ("6.24.0", "2025-01-10T10:00:00Z")],
            "promtail": [("6.16.6", "2024-10-01T00:00:00Z")],
        },
    )
    src, _ = sources(fake)
    loki = ChartPin(repository=repo, chart="loki", version="6.23.0")
    promtail = ChartPin(repository=repo, chart="promtail", version="6.16.6")
    releases = src.releases("helm_charts.loki", loki)
    assert [(r.version, r.released) for r in releases] == [
        ("6.23.0", date(2024, 12, 1)),
        ("6.24.0", date(2025, 1, 10)),
    ]
    assert src.missing("helm_charts.promtail", promtail) == ""
    assert fake.hits("/grafana/index.yaml") == 1


def test_helm_chart_version_that_disappeared_from_the_index(fake: FakeRegistry) -> None:
    repo = fake.helm_repo("/bitnami", {"minio": [("14.0.0", "2025-01-01T00:00:00Z")]})
    src, _ = sources(fake)
    gone = src.missing("helm_charts.minio", ChartPin(repository=repo, chart="minio", version="5.3.0"))
    assert gone == f"minio 5.3.0 not in the index of {repo} (dropped upstream?)"
    absent = src.missing("helm_charts.x", ChartPin(repository=repo, chart="x", version="1.0"))
    assert absent == f"x not in {repo}"


def test_helm_unknown_chart_in_a_bump_is_404_chart_not_in_repo(fake: FakeRegistry) -> None:
    repo = fake.helm_repo("/charts", {"traefik": [("34.4.1", "2025-01-01T00:00:00Z")]})
    src, _ = sources(fake)
    with pytest.raises(RegistryNotFoundError) as err:
        src.releases("helm_charts.nope", ChartPin(repository=repo, chart="nope", version="1.0"))
    assert str(err.value).endswith(f"404: nope not in {repo}")


def test_helm_missing_index_is_404(fake: FakeRegistry) -> None:
    src, _ = sources(fake)
    with pytest.raises(RegistryNotFoundError, match=r"404: no index.yaml at http://127.0.0.1:\d+/void"):
        src.releases("helm_charts.x", ChartPin(repository=f"{fake.url}/void", chart="x", version="1.0"))


def test_helm_index_keeps_versions_as_strings(fake: FakeRegistry) -> None:
    body = b"apiVersion: v1\nentries:\n  k:\n  - version: 1.10\n    created: 2025-01-01T00:00:00Z\n"
    fake.add("/raw/index.yaml", lambda _s: (200, {}, body))
    src, _ = sources(fake)
    got = src.releases("helm_charts.k", ChartPin(repository=f"{fake.url}/raw", chart="k", version="1.9"))
    assert [(r.version, r.released) for r in got] == [("1.10", date(2025, 1, 1))]


def test_helm_oci_chart_uses_tags_and_underscore_for_plus(fake: FakeRegistry) -> None:
    fake.oci_repo("/ghcr", "org/charts/app", ["1.0.0", "1.1.0_up2"])
    src, _ = sources(fake)
    pin = ChartPin(repository="oci://ghcr.io/org/charts", chart="app", version="1.1.0+up2")
    assert sorted(r.version for r in src.releases("helm_charts.app", pin)) == ["1.0.0", "1.1.0+up2"]
    assert src.missing("helm_charts.app", pin) == ""


# --- Terraform registry, releases, PyPI --------------------------------------------------------


def test_terraform_provider_versions_and_published_date(fake: FakeRegistry) -> None:
    fake.tf_provider(
        "/tf", "hashicorp/kubernetes", {"2.35.1": "2024-12-12T00:00:00Z", "2.36.0": "2025-02-20T15:00:00Z"}
    )
    src, _ = sources(fake)
    pin = ProviderPin(source="hashicorp/kubernetes", version="2.35.1")
    assert [r.version for r in src.releases("providers.kubernetes", pin)] == ["2.35.1", "2.36.0"]
    assert src.released("providers.kubernetes", pin, "2.36.0") == date(2025, 2, 20)
    assert src.missing("providers.kubernetes", pin) == ""
    gone = ProviderPin(source="hashicorp/kubernetes", version="2.0.99")
    assert (
        src.missing("providers.kubernetes", gone)
        == "provider hashicorp/kubernetes 2.0.99 not in the registry"
    )


def test_terraform_unknown_provider_is_404(fake: FakeRegistry) -> None:
    src, _ = sources(fake)
    with pytest.raises(RegistryNotFoundError, match=r"404: provider nobody/nothing not in 127\.0\.0\.1"):
        src.releases("providers.x", ProviderPin(source="nobody/nothing", version="1.0.0"))


def test_terraform_releases_page_with_after_and_skip_prereleases(fake: FakeRegistry) -> None:
    releases = [
        (f"1.{m}.{p}", f"{2000 + m}-01-{p + 1:02d}T00:00:00Z", False) for m in range(1, 21) for p in range(3)
    ]
    releases.append(("1.21.0-alpha1", "2030-01-01T00:00:00Z", True))
    fake.hashicorp_releases("/hc", releases)
    src, _ = sources(fake)
    got = [r.version for r in src.releases("terraform", VersionPin(version="1.5.7"))]
    assert "1.21.0-alpha1" not in got
    assert {"1.20.2", "1.6.0"} <= set(got)
    pages = [s for s in fake.seen if s.path == "/hc/v1/releases/terraform"]
    assert pages[1].query == {"limit": "20", "after": "2014-01-03T00:00:00Z"}
    # 61 releases are 4 pages; paging stops on the third, which reaches versions older than the pin.
    assert len(pages) == 3


def test_pypi_versions_dates_and_yanked(fake: FakeRegistry) -> None:
    fake.pypi(
        "/pypi-host",
        "doit",
        {
            "0.36.0": "2022-04-22T10:00:00Z",
            "0.37.0": "2024-01-01T00:00:00Z",
            "0.38.0": "2025-01-01T00:00:00Z",
        },
        yanked=("0.38.0",),
    )
    src, _ = sources(fake)
    got = src.releases("python.doit", VersionPin(version="0.37.0"))
    assert [(r.version, r.released) for r in got] == [
        ("0.36.0", date(2022, 4, 22)),
        ("0.37.0", date(2024, 1, 1)),
    ]


# --- failures: retries, time-outs, rate limits, offline ------------------------------------------


def test_500_is_retried_with_backoff_then_succeeds(fake: FakeRegistry) -> None:
    answers = iter([(500, {}, b"oops"), (502, {}, b"bad gateway")])
    good = b'{"versions": [{"version": "1.0.0"}]}'
    fake.add("/tf/v1/providers/a/b/versions", lambda _s: next(answers, (200, {}, good)))
    src, sleeps = sources(fake)
    assert [r.version for r in src.releases("providers.b", ProviderPin(source="a/b", version="1.0.0"))] == [
        "1.0.0"
    ]
    assert sleeps == [0.5, 1.0]


def test_persistent_500_fails_after_retries_naming_key_and_host(fake: FakeRegistry) -> None:
    fake.add("/tf/v1/providers/a/b/versions", lambda _s: (500, {}, b"oops"))
    src, sleeps = sources(fake, retries=2)
    with pytest.raises(RegistryServerError) as err:
        src.releases("providers.b", ProviderPin(source="a/b", version="1.0.0"))
    port = fake.url.rsplit(":", 1)[1]
    assert str(err.value) == (
        f"providers.b: 127.0.0.1:{port}: HTTP 500 from /tf/v1/providers/a/b/versions after 3 tries; retry later"
    )
    assert fake.hits("/tf/v1/providers/a/b/versions") == 3 and len(sleeps) == 2


def test_slow_response_past_the_timeout_is_offline_error(fake: FakeRegistry) -> None:
    fake.add("/pypi-host/pypi/slow/json", slow(1.5, (200, {}, b'{"releases": {}}')))
    src, _ = sources(fake, timeout=0.3, retries=1)
    started = time.monotonic()
    with pytest.raises(RegistryOfflineError) as err:
        src.releases("python.slow", VersionPin(version="1.0"))
    assert time.monotonic() - started < 1.5
    assert "no answer within 0.3 s after 2 tries; offline? retry later" in str(err.value)
    assert str(err.value).startswith("python.slow: 127.0.0.1:")


def test_rate_limit_with_long_wait_fails_at_once_saying_when(fake: FakeRegistry) -> None:
    fake.add("/hub/v2/library/x/tags/list", lambda _s: (429, {"Retry-After": "3600"}, b"{}"))
    src, sleeps = sources(fake)
    with pytest.raises(RegistryRateLimitedError) as err:
        src.releases("images.x", ImagePin(image="x", tag="1.0"))
    assert str(err.value).endswith("rate limited: retry after 3600 s")
    assert sleeps == [] and fake.hits("/hub/v2/library/x/tags/list") == 1


def test_rate_limit_with_short_wait_is_sat_out(fake: FakeRegistry) -> None:
    answers = iter([(429, {"Retry-After": "2"}, b"{}")])
    ok = b'{"name": "library/x", "tags": ["1.0"]}'
    fake.add("/hub/v2/library/x/tags/list", lambda _s: next(answers, (200, {}, ok)))
    src, sleeps = sources(fake)
    assert [r.version for r in src.releases("images.x", ImagePin(image="x", tag="1.0"))] == ["1.0"]
    assert sleeps == [2.0]


def test_github_style_403_rate_limit(fake: FakeRegistry) -> None:
    reset = str(int(time.time()) + 600)
    fake.add(
        "/pypi-host/pypi/x/json",
        lambda _s: (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, b""),
    )
    src, _ = sources(fake)
    with pytest.raises(RegistryRateLimitedError, match=r"rate limited: retry after (599|600) s"):
        src.releases("python.x", VersionPin(version="1.0"))


def test_connection_refused_is_offline_with_what_to_do() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    http = HttpClient(timeout=1, retries=1, sleep=lambda _s: None)
    src = Sources(Registries(pypi=f"http://127.0.0.1:{port}"), http)
    with pytest.raises(RegistryOfflineError) as err:
        src.releases("python.doit", VersionPin(version="0.37.0"))
    assert str(err.value).startswith(f"python.doit: 127.0.0.1:{port}: cannot connect (")
    assert str(err.value).endswith("offline? retry later")


def test_not_json_is_a_clear_server_error(fake: FakeRegistry) -> None:
    fake.add("/pypi-host/pypi/x/json", lambda _s: (200, {"Content-Type": "text/html"}, b"<html>"))
    src, _ = sources(fake)
    with pytest.raises(RegistryServerError, match="answer from /pypi-host/pypi/x/json is not JSON"):
        src.releases("python.x", VersionPin(version="1.0"))


def test_run_all_reports_every_failed_pin_at_once(fake: FakeRegistry) -> None:
    src, _ = sources(fake, retries=0)

    def lookup(key: str) -> int:
        if key == "ok":
            return 1
        raise RegistryError(key, "example.org", "broken")

    with pytest.raises(LookupFailedError) as err:
        src.run_all(["a", "ok", "b"], lookup, "bump")
    assert str(err.value).splitlines() == [
        "a: example.org: broken",
        "b: example.org: broken",
        "bump: 2 lookup(s) failed; nothing was written",
    ]


def test_retry_after_http_date() -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Wed, 01 Jan 2025 12:01:00 GMT", now) == 60
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("soon") is None


def test_mirrors_rewrite_longest_prefix() -> None:
    r = Registries(mirrors={"https://charts.example": "http://a", "https://charts.example/deep": "http://b"})
    assert r.url("https://charts.example/deep/index.yaml") == "http://b/index.yaml"
    assert r.url("https://charts.example/index.yaml") == "http://a/index.yaml"
    assert Registries().oci_base("docker.io") == "https://registry-1.docker.io"
    assert Registries().oci_base("quay.io") == "https://quay.io"
