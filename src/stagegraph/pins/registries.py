"""Where each kind of pin is looked up: base URLs, overridable (tests, mirrors, proxies).

Pure data and cheap to import: the HTTP code lives in `httpclient` and the per-registry
modules, imported only when a lookup runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType

#: docker.io is a name, not a host: its registry API is served from registry-1.docker.io
#: (and its token from auth.docker.io, which the registry's 401 challenge names).
DEFAULT_OCI: Mapping[str, str] = MappingProxyType({"docker.io": "https://registry-1.docker.io"})


@dataclass(frozen=True)
class Registries:
    """Base URLs of the registries, plus HTTP behaviour.

    terraform:  Terraform registry (provider versions API, `/v1/providers/...`).
    releases:   HashiCorp releases API, for the Terraform version itself.
    pypi:       PyPI (JSON API, `/pypi/<name>/json`).
    oci:        registry host -> base URL; hosts not listed are `https://<host>`.
    mirrors:    URL prefix -> replacement, applied to every URL (Helm repositories come
                from the lockfile itself, so this is how tests and mirrors redirect them).
    """

    terraform: str = "https://registry.terraform.io"
    releases: str = "https://api.releases.hashicorp.com"
    pypi: str = "https://pypi.org"
    oci: Mapping[str, str] = field(default_factory=lambda: DEFAULT_OCI)
    mirrors: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5
    #: Parallel lookups; registries are slow per request, not per byte.
    workers: int = 8

    def oci_base(self, host: str) -> str:
        return self.url(self.oci.get(host, f"https://{host}").rstrip("/"))

    def url(self, url: str) -> str:
        """Apply the longest matching mirror prefix."""
        for prefix in sorted(self.mirrors, key=len, reverse=True):
            if url.startswith(prefix):
                return self.mirrors[prefix] + url[len(prefix) :]
        return url


@dataclass(frozen=True)
class Release:
    """One version a registry publishes, with its date when the registry says it cheaply."""

    version: str
    released: date | None = None


def parse_date(value: object) -> date | None:
    """The day of an ISO 8601 timestamp as registries write it (`2024-12-10T10:31:00.12Z`)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
