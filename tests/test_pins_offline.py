"""With no network, registry look-ups stop after the first failure, with one line.

The "network" here is a local port nothing listens on: connecting fails at once, as it
does on a machine without a route to the registry.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from stagegraph.lockfile import load_lockfile
from stagegraph.pins.errors import RegistryOfflineError, RegistryUnreachableError
from stagegraph.pins.httpclient import HttpClient
from stagegraph.pins.registries import Registries
from stagegraph.pins.sources import Sources
from stagegraph.pins.verify import verify_pins

ROOT = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_after_one_unreachable_registry_no_lookup_tries_again() -> None:
    slept: list[float] = []
    http = HttpClient(timeout=2, retries=2, backoff=0.5, sleep=slept.append)
    url = f"http://127.0.0.1:{closed_port()}/index.yaml"
    with pytest.raises(RegistryOfflineError, match="cannot connect"):
        http.get(url, key="helm_charts.a")
    assert slept == [0.5, 1.0]  # the first look-up retried with back-off...
    slept.clear()
    started = time.monotonic()
    with pytest.raises(RegistryOfflineError):
        http.get("http://example.invalid/other", key="helm_charts.b")
    assert slept == [] and time.monotonic() - started < 0.5  # ...the next one does not try


def test_verify_pins_offline_is_one_line_and_quick() -> None:
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    registries = Registries(
        terraform=base,
        releases=base,
        pypi=base,
        oci={host: base for host in ("docker.io", "quay.io", "ghcr.io", "registry.k8s.io")},
        mirrors={"https://": f"{base}/", "oci://": f"{base}/"},
        retries=1,
        backoff=0.01,
    )
    lock = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
    text = (ROOT / "lockfiles" / "versions.yaml").read_text()
    started = time.monotonic()
    with pytest.raises(RegistryUnreachableError) as caught:
        verify_pins(lock, [], Sources(registries), text, "lockfiles/versions.yaml")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"verify_pins: cannot reach 127.0.0.1:{port} (cannot connect")
    assert "check the network" in message
