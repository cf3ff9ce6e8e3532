"""A fake of the registries `doit bump` and `doit verify_pins` talk to, on 127.0.0.1.

One threaded HTTP server speaks the subset of each protocol the pins code uses, with the
real status codes and headers: Helm `index.yaml`; OCI distribution `tags/list` with a
Bearer token challenge (`WWW-Authenticate`, then a token realm) and `Link` pagination,
`HEAD`/`GET` manifests and config blobs; the Terraform registry's provider versions API;
PyPI's JSON API; HashiCorp's releases API. Each registry lives under its own path prefix
(`/dockerhub`, `/quay`, ...), which `Registries` maps hosts to. Other pins test modules
import `FakeRegistry` and the `fake` and `project` fixtures from here; the tests below
check the fake itself stays faithful.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

Reply = tuple[int, dict[str, str], bytes]
Route = Callable[["Seen"], Reply]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeRegistry:
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    server: ThreadingHTTPServer | None = None

    # --- plumbing -----------------------------------------------------------------------

    def start(self) -> FakeRegistry:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                seen = Seen(self.command, parts.path, query, {k.lower(): v for k, v in self.headers.items()})
                fake.seen.append(seen)
                route = fake.routes.get(parts.path)
                status, headers, body = (
                    route(seen) if route else (404, {}, b'{"errors":[{"code":"NOT_FOUND"}]}')
                )
                try:
                    self.send_response(status)
                    headers = {"Content-Type": "application/json", **headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a time-out test)

            do_GET = _serve
            do_HEAD = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def add(self, path: str, route: Route) -> None:
        self.routes[path] = route

    def add_json(
        self, path: str, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(data).encode()
        self.add(path, lambda _seen: (status, dict(headers or {}), body))

    def hits(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)

    # --- protocols ------------------------------------------------------------------------

    def helm_repo(self, prefix: str, charts: Mapping[str, list[tuple[str, str]]]) -> str:
        """An index.yaml with `charts` {name: [(version, created)]}; returns the repo URL."""
        index = {
            "apiVersion": "v1",
            "entries": {
                name: [
                    {"name": name, "version": v, "created": c, "urls": [f"{name}-{v}.tgz"]}
                    for v, c in versions
                ]
                for name, versions in charts.items()
            },
            "generated": "2025-01-01T00:00:00Z",
        }
        body = yaml.safe_dump(index).encode()
        self.add(f"{prefix}/index.yaml", lambda _s: (200, {"Content-Type": "application/x-yaml"}, body))
        return f"{self.url}{prefix}"

    def oci_repo(
        self,
        prefix: str,
        repository: str,
        tags: list[str],
        *,
        page: int = 0,
        token: bool = True,
        created: Mapping[str, str] | None = None,
    ) -> None:
        """tags/list (paged by `page` when > 0), HEAD/GET manifests, config blobs, a token realm."""
        realm = f"{self.url}{prefix}/token"
        scope = f"repository:{repository}:pull"
        good = f"tok-{repository}"

        def authorized(seen: Seen) -> bool:
            return not token or seen.headers.get("authorization") == f"Bearer {good}"

        def challenge() -> Reply:
            value = f'Bearer realm="{realm}",service="fake-registry",scope="{scope}"'
            return 401, {"WWW-Authenticate": value}, b'{"errors":[{"code":"UNAUTHORIZED"}]}'

        def tag_list(seen: Seen) -> Reply:
            if not authorized(seen):
                return challenge()
            ordered = sorted(tags)
            start = ordered.index(seen.query["last"]) + 1 if "last" in seen.query else 0
            n = page or len(ordered)
            chunk = ordered[start : start + n]
            headers = {}
            if start + n < len(ordered):
                nxt = urllib.parse.urlencode({"last": chunk[-1], "n": n})
                headers["Link"] = f'<{prefix}/v2/{repository}/tags/list?{nxt}>; rel="next"'
            return 200, headers, json.dumps({"name": repository, "tags": chunk}).encode()

        def manifest(seen: Seen) -> Reply:
            if not authorized(seen):
                return challenge()
            ref = seen.path.rsplit("/", 1)[1]
            if ref.startswith("sha256:cfg"):
                return 404, {}, b""
            if ref.startswith("sha256:img-"):
                tag = ref.removeprefix("sha256:img-")
                doc = {"schemaVersion": 2, "config": {"digest": f"sha256:cfg-{tag}"}}
                return (
                    200,
                    {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                    json.dumps(doc).encode(),
                )
            if ref not in tags:
                return 404, {}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
            doc = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {"digest": f"sha256:img-{ref}", "platform": {"architecture": "amd64", "os": "linux"}}
                ],
            }
            return 200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, json.dumps(doc).encode()

        def blob(seen: Seen) -> Reply:
            if not authorized(seen):
                return challenge()
            tag = seen.path.rsplit("/", 1)[1].removeprefix("sha256:cfg-")
            when = (created or {}).get(tag, "2025-01-15T12:00:00.123456789Z")
            return 200, {}, json.dumps({"created": when, "architecture": "amd64"}).encode()

        def token_realm(seen: Seen) -> Reply:
            if seen.query.get("scope") != scope or seen.query.get("service") != "fake-registry":
                return 400, {}, b'{"errors":[{"code":"DENIED"}]}'
            return 200, {}, json.dumps({"token": good, "expires_in": 300}).encode()

        base = f"{prefix}/v2/{repository}"
        self.add(f"{base}/tags/list", tag_list)
        for tag in [*tags, *(f"sha256:img-{t}" for t in tags)]:
            self.add(f"{base}/manifests/{tag}", manifest)
        for tag in tags:
            self.add(f"{base}/blobs/sha256:cfg-{tag}", blob)
        self.add(f"{prefix}/token", _merge_realms(self.routes.get(f"{prefix}/token"), scope, token_realm))

    def tf_provider(self, prefix: str, address: str, versions: Mapping[str, str]) -> None:
        """Provider versions API; {version: published_at}."""
        listing = {
            "id": address,
            "versions": [{"version": v, "protocols": ["5.0"], "platforms": []} for v in versions],
            "warnings": None,
        }
        self.add_json(f"{prefix}/v1/providers/{address}/versions", listing)
        for v, published in versions.items():
            self.add_json(f"{prefix}/v1/providers/{address}/{v}", {"version": v, "published_at": published})

    def pypi(self, prefix: str, name: str, releases: Mapping[str, str], yanked: tuple[str, ...] = ()) -> None:
        data = {
            "info": {"name": name},
            "releases": {
                v: [{"filename": f"{name}-{v}.tar.gz", "upload_time_iso_8601": when, "yanked": v in yanked}]
                for v, when in releases.items()
            },
        }
        self.add_json(f"{prefix}/pypi/{name}/json", data)

    def hashicorp_releases(self, prefix: str, releases: list[tuple[str, str, bool]]) -> None:
        """Releases API: newest first, `limit` a page, `after=<timestamp_created>`."""
        ordered = sorted(releases, key=lambda r: r[1], reverse=True)

        def listing(seen: Seen) -> Reply:
            limit = int(seen.query.get("limit", "20"))
            after = seen.query.get("after")
            rest = [r for r in ordered if after is None or r[1] < after]
            chunk = [
                {"version": v, "timestamp_created": ts, "is_prerelease": pre} for v, ts, pre in rest[:limit]
            ]
            return 200, {}, json.dumps(chunk).encode()

        self.add(f"{prefix}/v1/releases/terraform", listing)


def serve_lockfile(
    fake: FakeRegistry,
    lock: Any,
    newer: Mapping[str, list[tuple[str, str]]] | None = None,
    drop: tuple[str, ...] = (),
) -> Any:
    """Serve upstream for every pin of `lock`: its own version, plus `newer` {key: [(version,
    date)]}; keys in `drop` are not published any more. Returns matching `Registries`."""
    from stagegraph.lockfile import ChartPin, ImagePin, ProviderPin
    from stagegraph.pins.oci import parse_image
    from stagegraph.pins.registries import Registries

    newer = newer or {}
    old_day = "2024-06-01T00:00:00Z"
    charts: dict[str, dict[str, list[tuple[str, str]]]] = {}
    images: dict[tuple[str, str], list[str]] = {}
    created: dict[tuple[str, str], dict[str, str]] = {}
    mirrors: dict[str, str] = {}
    hosts: dict[str, str] = {}
    keys = lock.keys()  # Lockfile.keys(): iterating a pydantic model yields its fields
    for key in keys:
        pin = lock.pin(key)
        own = [] if key in drop else [(_own(pin), old_day)]
        versions = own + list(newer.get(key, []))
        if isinstance(pin, ChartPin):
            charts.setdefault(pin.repository, {})[pin.chart] = versions
        elif isinstance(pin, ImagePin):
            ref = parse_image(pin.image)
            hosts[ref.host] = f"{fake.url}/oci-{ref.host}"
            images[(ref.host, ref.repository)] = [v for v, _ in versions]
            created[(ref.host, ref.repository)] = dict(versions)
        elif isinstance(pin, ProviderPin):
            fake.tf_provider("/tf", pin.source, dict(versions))
        elif key == "terraform":
            fake.hashicorp_releases("/hc", [(v, d, False) for v, d in versions])
        elif key.startswith("python."):
            fake.pypi("/pypi-host", key.split(".", 1)[1], dict(versions))
    for repository, entries in charts.items():
        parts = urllib.parse.urlsplit(repository)
        mirrors[f"{parts.scheme}://{parts.netloc}"] = f"{fake.url}/helm/{parts.netloc}"
        fake.helm_repo(f"/helm/{parts.netloc}{parts.path}".rstrip("/"), entries)
    for (host, repository), tags in images.items():
        fake.oci_repo(f"/oci-{host}", repository, tags, page=2, created=created[(host, repository)])
    return Registries(
        terraform=f"{fake.url}/tf",
        releases=f"{fake.url}/hc",
        pypi=f"{fake.url}/pypi-host",
        oci=hosts,
        mirrors=mirrors,
        retries=1,
        backoff=0.01,
    )


def _own(pin: Any) -> str:
    return str(getattr(pin, "tag", None) or pin.version)


def _merge_realms(previous: Route | None, scope: str, route: Route) -> Route:
    """One token realm per registry prefix serves every repository of that registry."""

    def merged(seen: Seen) -> Reply:
        if seen.query.get("scope") == scope or previous is None:
            return route(seen)
        return previous(seen)

    return merged


def slow(seconds: float, reply: Reply) -> Route:
    def route(_seen: Seen) -> Reply:
        time.sleep(seconds)
        return reply

    return route


# --- fixtures -----------------------------------------------------------------------------
# Other pins test modules import these (by their function names) to get `fake` and
# `project`; the names differ from the fixture names so that a test's parameter does not
# shadow the import.


@pytest.fixture(name="fake")
def fake_registry() -> Iterator[FakeRegistry]:
    """A started fake, stopped after the test."""
    registry = FakeRegistry().start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(name="project")
def repo_project(tmp_path: Path) -> object:
    """A copy of this repository's config and lockfile, as a real Project."""
    from stagegraph.project import Project

    (tmp_path / "lockfiles").mkdir()
    shutil.copy(ROOT / "lockfiles" / "versions.yaml", tmp_path / "lockfiles" / "versions.yaml")
    shutil.copy(ROOT / "nebari-config.yaml", tmp_path / "nebari-config.yaml")
    return Project(
        root=tmp_path,
        config_path=tmp_path / "nebari-config.yaml",
        lockfile_path=tmp_path / "lockfiles" / "versions.yaml",
    )


# --- the fake itself -----------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_fake_oci_challenges_then_pages_with_link(fake: FakeRegistry) -> None:
    fake.oci_repo("/hub", "library/traefik", ["v3.0.0", "v3.1.0", "v3.2.1"], page=2)
    status, headers, _ = _get(f"{fake.url}/hub/v2/library/traefik/tags/list")
    assert status == 401 and headers["WWW-Authenticate"].startswith('Bearer realm="')
    query = "scope=repository:library/traefik:pull&service=fake-registry"
    token = json.loads(_get(f"{fake.url}/hub/token?{query}")[2])["token"]
    status, headers, body = _get(
        f"{fake.url}/hub/v2/library/traefik/tags/list", {"Authorization": f"Bearer {token}"}
    )
    assert status == 200 and json.loads(body)["tags"] == ["v3.0.0", "v3.1.0"]
    assert headers["Link"] == '</hub/v2/library/traefik/tags/list?last=v3.1.0&n=2>; rel="next"'


def test_fake_helm_index_is_yaml_with_entries(fake: FakeRegistry) -> None:
    repo = fake.helm_repo("/charts", {"traefik": [("34.4.1", "2025-01-02T00:00:00Z")]})
    data = yaml.safe_load(_get(f"{repo}/index.yaml")[2])
    assert data["entries"]["traefik"][0]["version"] == "34.4.1"
    assert _get(f"{fake.url}/nothing")[0] == 404
