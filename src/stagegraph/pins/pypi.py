"""PyPI's JSON API: `GET /pypi/<name>/json` lists every release with its files.

A release whose files are all yanked (or that has no files) is not offered: pip would
not pick it either.
"""

from __future__ import annotations

from stagegraph.pins.errors import RegistryServerError
from stagegraph.pins.httpclient import HttpClient, host_of
from stagegraph.pins.registries import Registries, Release, parse_date


class PypiClient:
    def __init__(self, http: HttpClient, registries: Registries) -> None:
        self.http = http
        self.registries = registries

    def releases(self, key: str, name: str) -> list[Release]:
        base = self.registries.url(self.registries.pypi.rstrip("/"))
        url = f"{base}/pypi/{name}/json"
        data = self.http.get(url, key=key, not_found=f"{name} not on {host_of(base)}").json(key)
        releases = data.get("releases") if isinstance(data, dict) else None
        if not isinstance(releases, dict):
            raise RegistryServerError(key, host_of(url), f"no release list for {name}; retry later")
        out = []
        for version, files in releases.items():
            if not isinstance(files, list):
                continue
            live = [f for f in files if isinstance(f, dict) and not f.get("yanked")]
            if not live:
                continue
            days = [
                d
                for d in (parse_date(f.get("upload_time_iso_8601") or f.get("upload_time")) for f in live)
                if d
            ]
            out.append(Release(str(version), min(days) if days else None))
        return out
