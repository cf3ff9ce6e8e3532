"""Helm chart versions: a repository's `index.yaml`, or tags of an OCI-hosted chart.

Repositories drop old versions from their index (Bitnami kept six months, and deploys
that pinned the dropped versions broke), which is what `verify_pins` looks for. The index
is parsed with YAML's base loader so every value stays a string: an unquoted `1.10` in an
index is a chart version, not the float 1.1.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import yaml

from stagegraph.lockfile import ChartPin
from stagegraph.pins.errors import RegistryNotFoundError, RegistryServerError
from stagegraph.pins.httpclient import HttpClient, host_of
from stagegraph.pins.oci import OciClient, chart_tag, parse_image
from stagegraph.pins.registries import Registries, Release, parse_date


@dataclass(frozen=True)
class ChartLookup:
    """What one chart pin's repository says about it."""

    releases: list[Release]
    #: Why the chart itself is absent (its name is not in the index), or "".
    absent: str = ""


class HelmClient:
    def __init__(self, http: HttpClient, registries: Registries, oci: OciClient) -> None:
        self.http = http
        self.registries = registries
        self.oci = oci
        # Parsed indexes by URL: loki and promtail share one multi-MB index, parse it once.
        self._indexes: dict[str, dict[str, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def releases(self, key: str, pin: ChartPin) -> list[Release]:
        """Every published version of the chart; a chart missing from its repository is a 404."""
        found = self._lookup(key, pin)
        if found.absent:
            raise RegistryNotFoundError(key, host_of(self._index_url(pin)), f"404: {found.absent}")
        return found.releases

    def exists(self, key: str, pin: ChartPin) -> str:
        """Empty when the pinned version is published, else why not (for the verify report)."""
        if pin.repository.startswith("oci://"):
            ref = parse_image(f"{pin.repository.rstrip('/')}/{pin.chart}")
            if self.oci.exists(key, ref, chart_tag(pin.version)):
                return ""
            return f"{pin.chart} {pin.version} not in {pin.repository}"
        found = self._lookup(key, pin)
        if found.absent:
            return found.absent
        if any(r.version == pin.version for r in found.releases):
            return ""
        return f"{pin.chart} {pin.version} not in the index of {pin.repository} (dropped upstream?)"

    def _index_url(self, pin: ChartPin) -> str:
        return self.registries.url(f"{pin.repository.rstrip('/')}/index.yaml")

    def _lookup(self, key: str, pin: ChartPin) -> ChartLookup:
        if pin.repository.startswith("oci://"):
            ref = parse_image(f"{pin.repository.rstrip('/')}/{pin.chart}")
            # OCI tags carry no dates; `+` was stored as `_` and is turned back.
            tags = self.oci.tags(key, ref)
            return ChartLookup([Release(t.replace("_", "+")) for t in tags])
        url = self._index_url(pin)
        index = self._index(key, url, pin.repository)
        entries = index.get("entries")
        if not isinstance(entries, dict):
            raise RegistryServerError(
                key, host_of(url), f"{pin.repository}/index.yaml has no entries; retry later"
            )
        versions = entries.get(pin.chart)
        if not isinstance(versions, list):
            return ChartLookup([], absent=f"{pin.chart} not in {pin.repository}")
        out = []
        for item in versions:
            if isinstance(item, dict) and isinstance(item.get("version"), str):
                out.append(Release(item["version"], parse_date(item.get("created"))))
        return ChartLookup(out)

    def _index(self, key: str, url: str, repository: str) -> dict[str, Any]:
        with self._guard:
            lock = self._locks.setdefault(url, threading.Lock())
        with lock:
            if url not in self._indexes:
                answer = self.http.get(url, key=key, not_found=f"no index.yaml at {repository}")
                self._indexes[url] = _parse_index(key, url, answer.body)
            return self._indexes[url]


def _parse_index(key: str, url: str, body: bytes) -> dict[str, Any]:
    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    try:
        data = yaml.load(body, Loader=loader)  # noqa: S506 - the base loader builds only str/list/dict
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        raise RegistryServerError(key, host_of(url), "index.yaml is not a YAML mapping; retry later")
    return data
