"""Benchmark rows of a deployment whose state is shared: in S3 (a local moto server) and
in a cluster (the FAKE Kubernetes API of the repository's tests, `tests/kubefake.py`).

Counts every HTTP request the server receives during a no-op deploy - Terraform's none
(nothing is applied) and stagegraph's records and lock - since against a real store
requests cost latency and money, not just CPU. Needs `moto[server]` and `cryptography`
(the test extra) and, for the cluster row, the repository's `tests/` folder.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BUCKET = "bench-state"
STATE_BLOCK = "terraform_state:\n  type: remote\n"


def _point_state(project: Path, block: str) -> None:
    """Replace the default config's `terraform_state` with `block`."""
    config = project / "nebari-config.yaml"
    text = config.read_text()
    if STATE_BLOCK not in text:
        raise SystemExit(f"bench: {config}: expected `terraform_state: type: remote` to replace")
    config.write_text(text.replace(STATE_BLOCK, block))


@contextmanager
def counting_s3() -> Iterator[tuple[dict[str, str], list[int]]]:
    """A moto S3 server on 127.0.0.1 and a one-item list counting the requests it served."""
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    app = DomainDispatcherApplication(create_backend_app)
    count = [0]

    def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        count[0] += 1
        return app(environ, start_response)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = make_server("127.0.0.1", port, counted, True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        yield env, count
    finally:
        server.shutdown()
        thread.join(timeout=10)


def shared_state_rows(
    project: Path, runs: int, run: Callable[[Path, str], float]
) -> list[tuple[str, float, str]]:
    """First deploy, then no-op deploys of `project` with its state in the local S3 server."""
    import boto3

    with counting_s3() as (env, count):
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the doit runs inherit it
        try:
            boto3.client("s3").create_bucket(Bucket=BUCKET)
            _point_state(
                project,
                "terraform_state:\n  type: existing\n  backend: s3\n  config:\n"
                f"    bucket: {BUCKET}\n    key: bench\n    region: us-east-1\n"
                "    use_path_style: 'true'\n    skip_credentials_validation: 'true'\n"
                "    skip_requesting_account_id: 'true'\n    skip_metadata_api_check: 'true'\n"
                "    skip_region_validation: 'true'\n",
            )
            run(project, "deploy")
            times, requests = [], []
            for _ in range(runs):
                before = count[0]
                times.append(run(project, "deploy"))
                requests.append(count[0] - before)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return [
        ("no-op deploy, state shared in S3 (local moto server)", statistics.median(times), "s"),
        ("  S3 requests of that run", statistics.median(requests), "requests"),
    ]


def kube_state_rows(
    repo: Path, project: Path, runs: int, run: Callable[[Path, str], float]
) -> list[tuple[str, float, str]]:
    """First deploy, then no-op deploys of `project` with its state in the fake Kubernetes API."""
    import sys

    tests = repo / "tests"
    if not (tests / "kubefake.py").is_file():
        return []  # an installed package without the repository's tests: no fake to run
    sys.path.insert(0, str(tests))
    try:
        from kubefake import FakeKube  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tests))
    with FakeKube(tls=True) as fake:
        kubeconfig = fake.write_kubeconfig(project / "bench-kubeconfig.yaml")
        _point_state(
            project,
            "terraform_state:\n  type: existing\n  backend: kubernetes\n  config:\n"
            f"    config_path: {kubeconfig}\n    namespace: default\n",
        )
        run(project, "deploy")
        times, requests = [], []
        for _ in range(runs):
            before = len(fake.requests)
            times.append(run(project, "deploy"))
            requests.append(len(fake.requests) - before)
    return [
        ("no-op deploy, state in a cluster (fake Kubernetes API)", statistics.median(times), "s"),
        ("  Kubernetes API requests of that run", statistics.median(requests), "requests"),
    ]
