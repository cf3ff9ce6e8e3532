"""Terraform: provider versions from the registry, and releases of Terraform itself.

Providers: `GET /v1/providers/{namespace}/{type}/versions` lists every version (no dates);
`GET /v1/providers/{namespace}/{type}/{version}` has `published_at`, asked only for a
proposed version. Terraform: the HashiCorp releases API, newest first, 20 a page, paged
with `after=<timestamp_created of the last one>`.
"""

from __future__ import annotations

import urllib.parse
from datetime import date

from stagegraph.pins.errors import RegistryError, RegistryServerError
from stagegraph.pins.httpclient import HttpClient, host_of
from stagegraph.pins.registries import Registries, Release, parse_date
from stagegraph.pins.versions import parse_tag

PUBLIC_REGISTRY = "registry.terraform.io"
RELEASES_PAGE = 20
MAX_PAGES = 100


class TerraformRegistryClient:
    def __init__(self, http: HttpClient, registries: Registries) -> None:
        self.http = http
        self.registries = registries

    def _provider_base(self, source: str) -> tuple[str, str]:
        """Base URL and `namespace/type` of a provider source (`[host/]namespace/type`)."""
        parts = source.split("/")
        if len(parts) == 3:
            host, address = parts[0], "/".join(parts[1:])
        else:
            host, address = PUBLIC_REGISTRY, source
        base = self.registries.terraform if host == PUBLIC_REGISTRY else f"https://{host}"
        return self.registries.url(base.rstrip("/")), address

    def provider_versions(self, key: str, source: str) -> list[Release]:
        base, address = self._provider_base(source)
        url = f"{base}/v1/providers/{address}/versions"
        data = self.http.get(url, key=key, not_found=f"provider {address} not in {host_of(base)}").json(key)
        versions = data.get("versions") if isinstance(data, dict) else None
        if not isinstance(versions, list):
            raise RegistryServerError(
                key, host_of(url), f"no version list for provider {address}; retry later"
            )
        return [Release(str(v["version"])) for v in versions if isinstance(v, dict) and "version" in v]

    def provider_published(self, key: str, source: str, version: str) -> date | None:
        """Best effort: a missing date never fails a bump."""
        base, address = self._provider_base(source)
        try:
            data = self.http.get(f"{base}/v1/providers/{address}/{version}", key=key).json(key)
        except RegistryError:
            return None
        return parse_date(data.get("published_at")) if isinstance(data, dict) else None

    def terraform_releases(self, key: str, current: str) -> list[Release]:
        """Releases newer than `current` (paging stops once it reaches older ones)."""
        base = self.registries.url(self.registries.releases.rstrip("/"))
        floor = parse_tag(current)
        out: list[Release] = []
        after = ""
        for _ in range(MAX_PAGES):
            query = {"limit": str(RELEASES_PAGE), **({"after": after} if after else {})}
            url = f"{base}/v1/releases/terraform?{urllib.parse.urlencode(query)}"
            page = self.http.get(url, key=key, not_found="product terraform").json(key)
            if not isinstance(page, list):
                raise RegistryServerError(key, host_of(url), "release list is not a list; retry later")
            older = False
            for item in page:
                if not isinstance(item, dict) or "version" not in item:
                    continue
                if item.get("is_prerelease"):
                    continue
                version = str(item["version"])
                out.append(Release(version, parse_date(item.get("timestamp_created"))))
                tag = parse_tag(version)
                older = older or (floor is not None and tag is not None and tag.release <= floor.release)
            if len(page) < RELEASES_PAGE or older or not page:
                return out
            after = str(page[-1].get("timestamp_created", ""))
            if not after:
                return out
        return out
