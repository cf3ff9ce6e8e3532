"""`doit check` as a user runs it, and how it gets chart data (local folder, cache, download).

The chart repository is a local HTTP server on 127.0.0.1 serving an `index.yaml` and a
packaged chart made by the test itself (a stand-in for a real Helm repository: same files,
same layout), so nothing here depends on material fetched from elsewhere.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from checkhelpers import SHARED_CHARTS, shared_charts
from sandboxproject import SandboxProject

from stagegraph.checks.charts import ChartStore, http_fetch

# --- the command ------------------------------------------------------------------------


def test_doit_check_passes_on_the_default_config(tmp_path: Path) -> None:
    shared_charts()
    project = SandboxProject.create(tmp_path / "p")
    done = project.doit("check", "--charts", str(SHARED_CHARTS), "--offline")
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("nebari-config.yaml: doit check: 0 problem(s), ")
    assert "kubernetes-objects, helm-values, secret-references, oauth-redirects" in last
    # Charts without a values.schema.json are named, one line each, per stage.
    assert (
        "07-kubernetes-services: helm-values: skipped: main.tf.json helm_release.loki (loki 6.23.0): "
        "the chart has no values.schema.json; types not checked"
    ) in done.stdout


def test_doit_check_prints_one_line_per_problem_and_fails(tmp_path: Path) -> None:
    shared_charts()
    project = SandboxProject.create(tmp_path / "p")
    project.edit_config(
        lambda c: c["security"].setdefault("keycloak", {}).update(overrides={"extraEnvs": "- name: X"})
    )
    done = project.doit("check", "--charts", str(SHARED_CHARTS), "--offline", check=False)
    assert done.returncode != 0
    lines = done.stdout.splitlines()
    problems = [line for line in lines if line[:2].isdigit() and ": skipped: " not in line]
    assert problems == [
        "05-kubernetes-keycloak: helm-values: main.tf.json helm_release.keycloak (keycloakx 2.5.1): extraEnvs: "
        "not a value of the chart (neither in its values.yaml nor in its values.schema.json); the chart ignores it"
    ]
    # The summary counts the skips it printed (charts without a schema, and terraform-schema
    # saying the sandbox has no real provider).
    skipped = [line for line in lines if ": skipped: " in line]
    assert any(line.startswith("01-terraform-state: terraform-schema: skipped: ") for line in skipped)
    assert lines[-1].startswith(
        f"error: nebari-config.yaml: doit check: 1 problem(s), {len(skipped)} skipped, 6 check(s)"
    )
    assert "Traceback" not in done.stderr


def test_doit_check_offline_without_chart_data_names_what_it_skipped(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    done = project.doit("check", "--offline", "--only", "helm-values")
    assert (
        "04-kubernetes-ingress: helm-values: skipped: main.tf.json helm_release.traefik (traefik 34.4.1): "
        "no data for chart traefik 34.4.1 (looked in no local chart folder; fetching is off)"
    ) in done.stdout.splitlines()
    assert "0 problem(s)" in done.stdout


def test_doit_check_refuses_an_unknown_check_name(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    done = project.doit("check", "--offline", "--only", "helm-valuez", check=False)
    assert done.returncode != 0
    assert "doit check: unknown check helm-valuez; known checks: kubernetes-objects, helm-values" in (
        done.stdout + done.stderr
    )


# --- chart data from a Helm repository ----------------------------------------------------


def _chart_archive() -> bytes:
    """A packaged chart as `helm package` lays it out, with a packaged subchart inside."""

    def tgz(files: dict[str, str]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    sub = tgz({"sub/Chart.yaml": "name: sub\n", "sub/values.yaml": "subkey: 1\n"})
    files = {
        "demo/Chart.yaml": "name: demo\nversion: 1.2.3\n",
        "demo/values.yaml": "replicas: 1\nports: {}\n",
        "demo/values.schema.json": '{"type": "object", "properties": {"replicas": {"type": "integer"}}}',
        "demo/templates/deployment.yaml": "kind: Deployment\n",
        "demo/crds/things.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n",
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in [*((n, t.encode()) for n, t in files.items()), ("demo/charts/sub-0.1.0.tgz", sub)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def chart_repo() -> Iterator[tuple[str, list[str]]]:
    index = yaml.safe_dump(
        {"apiVersion": "v1", "entries": {"demo": [{"version": "1.2.3", "urls": ["demo-1.2.3.tgz"]}]}}
    )
    archive = _chart_archive()
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = {"/index.yaml": index.encode(), "/demo-1.2.3.tgz": archive}.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"not found")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_chart_data_is_downloaded_once_per_pinned_version(
    tmp_path: Path, chart_repo: tuple[str, list[str]]
) -> None:
    url, requests = chart_repo
    store = ChartStore(cache_dir=tmp_path / "cache", fetcher=http_fetch(timeout=5))
    data = store.get("demo", "1.2.3", url)
    assert not isinstance(data, str), data
    assert data.values == {"replicas": 1, "ports": {}, "sub": {"subkey": 1}}
    assert data.schema == {"type": "object", "properties": {"replicas": {"type": "integer"}}}
    kept = sorted(str(p.relative_to(data.root)) for p in data.root.rglob("*") if p.is_file())
    assert kept == [
        ".stagegraph-complete",
        "charts/sub/values.yaml",
        "crds/things.yaml",
        "values.schema.json",
        "values.yaml",
    ]  # data only: no template of the chart is kept
    assert requests == ["/index.yaml", "/demo-1.2.3.tgz"]
    # A later run reads the cache and asks the repository nothing.
    offline = ChartStore(cache_dir=tmp_path / "cache", fetcher=None)
    again = offline.get("demo", "1.2.3", url)
    assert not isinstance(again, str) and again.values["replicas"] == 1
    assert requests == ["/index.yaml", "/demo-1.2.3.tgz"]


def test_an_unreachable_or_incomplete_repository_is_named(
    tmp_path: Path, chart_repo: tuple[str, list[str]]
) -> None:
    url, _ = chart_repo
    store = ChartStore(cache_dir=tmp_path / "cache", fetcher=http_fetch(timeout=5))
    missing = store.get("demo", "9.9.9", url)
    assert missing == (
        f"no data for chart demo 9.9.9 (looked in no local chart folder; {url} unreachable or incomplete: "
        f"KeyError: 'demo 9.9.9 is not in {url}/index.yaml')"
    )
    closed = ChartStore(cache_dir=tmp_path / "cache", fetcher=http_fetch(timeout=2))
    reason = closed.get("demo", "1.2.3", "http://127.0.0.1:9")
    assert (
        isinstance(reason, str)
        and reason.startswith("no data for chart demo 1.2.3")
        and "127.0.0.1:9" in reason
    )
