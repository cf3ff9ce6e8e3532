"""OCI distribution registries (Docker Hub, quay.io, ghcr.io): tags, existence, dates.

Anonymous pulls still need a token on Docker Hub and ghcr.io: the first request answers
401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, the realm hands out a
token, and the request is repeated with it. Tag lists are paginated with a `Link` header
(`<...?last=x&n=100>; rel="next"`); this follows whatever the registry sends.

Existence uses `HEAD` on the manifest: Docker Hub does not count HEADs against its pull
rate limit, and the answer is 200 or 404 without downloading anything.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from dataclasses import dataclass
from datetime import date
from typing import Any

from stagegraph.pins.errors import RegistryError, RegistryNotFoundError, RegistryServerError
from stagegraph.pins.httpclient import HttpClient, Response, host_of
from stagegraph.pins.registries import Registries, parse_date

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
#: A registry that keeps sending `next` links is broken; stop rather than loop forever.
MAX_PAGES = 200

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class ImageRef:
    """`quay.io/keycloak/keycloak` -> host quay.io, repository keycloak/keycloak."""

    host: str
    repository: str

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}"


def parse_image(image: str) -> ImageRef:
    """Split an image name the way docker does: no registry host means docker.io."""
    name = image.removeprefix("oci://").split("@", 1)[0]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, repository = first, rest
    else:
        host, repository = "docker.io", name
    if host == "docker.io" and "/" not in repository:
        repository = f"library/{repository}"
    return ImageRef(host, repository)


def chart_tag(version: str) -> str:
    """Helm stores chart version `1.2.3+build` as OCI tag `1.2.3_build` (`+` is not allowed)."""
    return version.replace("+", "_")


class OciClient:
    def __init__(self, http: HttpClient, registries: Registries) -> None:
        self.http = http
        self.registries = registries
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def _base(self, ref: ImageRef) -> str:
        return self.registries.oci_base(ref.host)

    def _request(
        self,
        key: str,
        ref: ImageRef,
        url: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        accept: tuple[int, ...] = (),
        not_found: str | None = None,
    ) -> Response:
        scope = f"repository:{ref.repository}:pull"
        token = self._tokens.get((ref.host, scope))
        auth = f"Bearer {token}" if token else None
        answer = self.http.get(
            url,
            key=key,
            method=method,
            headers=headers,
            auth=auth,
            accept=(401, *accept),
            not_found=not_found,
        )
        if answer.status != 401:
            return answer
        token = self._token(key, ref, answer.header("www-authenticate"), scope)
        answer = self.http.get(
            url,
            key=key,
            method=method,
            headers=headers,
            auth=f"Bearer {token}",
            accept=(401, *accept),
            not_found=not_found,
        )
        if answer.status == 401:
            # Public repositories hand anonymous tokens; a refusal means a private or
            # missing repository (ghcr.io and quay.io answer 401 for both).
            raise RegistryNotFoundError(
                key,
                host_of(url),
                f"404: {ref} does not exist or is not public (the registry refused a token)",
            )
        return answer

    def _token(self, key: str, ref: ImageRef, challenge: str, scope: str) -> str:
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        host = self.registries.oci_base(ref.host)
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryError(
                key,
                host_of(host),
                f"asks for {scheme or 'unknown'} credentials for {ref}; "
                "only public images with anonymous tokens can be checked",
            )
        query = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        realm = self.registries.url(params["realm"])
        url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(query)}"
        data = self.http.get(url, key=key, not_found=f"token service {realm}").json(key)
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryServerError(
                key, host_of(url), f"token answer from {realm} has no token; retry later"
            )
        with self._lock:
            self._tokens[(ref.host, scope)] = token
        return token

    def tags(self, key: str, ref: ImageRef) -> list[str]:
        """Every tag of a repository, following `Link` pagination."""
        url = f"{self._base(ref)}/v2/{ref.repository}/tags/list"
        out: list[str] = []
        for _ in range(MAX_PAGES):
            answer = self._request(key, ref, url, not_found=f"{ref} not in {ref.host}")
            data = answer.json(key)
            tags = data.get("tags") if isinstance(data, dict) else None
            if tags is not None and not isinstance(tags, list):
                raise RegistryServerError(key, host_of(url), f"tag list of {ref} is not a list; retry later")
            out.extend(str(t) for t in tags or ())
            link = _NEXT_LINK.search(answer.header("link"))
            if not link:
                return out
            url = urllib.parse.urljoin(answer.url, link.group(1))
        raise RegistryServerError(key, host_of(url), f"tag list of {ref} has more than {MAX_PAGES} pages")

    def exists(self, key: str, ref: ImageRef, tag: str) -> bool:
        url = f"{self._base(ref)}/v2/{ref.repository}/manifests/{urllib.parse.quote(tag, safe='')}"
        answer = self._request(
            key, ref, url, method="HEAD", headers={"Accept": MANIFEST_TYPES}, accept=(404,)
        )
        return answer.status != 404

    def created(self, key: str, ref: ImageRef, tag: str) -> date | None:
        """Build date of a tag, from its index annotation or its config blob.

        Costs up to three GETs (and Docker Hub counts manifest GETs as pulls), so it runs
        only for a proposed tag, and any failure leaves the date unknown instead of
        failing the bump.
        """
        try:
            return self._created(key, ref, tag)
        except RegistryError:
            return None

    def _created(self, key: str, ref: ImageRef, tag: str) -> date | None:
        base = f"{self._base(ref)}/v2/{ref.repository}"
        doc = self._json(key, ref, f"{base}/manifests/{urllib.parse.quote(tag, safe='')}")
        when = parse_date((doc.get("annotations") or {}).get("org.opencontainers.image.created"))
        if when:
            return when
        manifests = doc.get("manifests")
        if isinstance(manifests, list) and manifests:
            pick = next(
                (m for m in manifests if (m.get("platform") or {}).get("architecture") == "amd64"),
                manifests[0],
            )
            doc = self._json(key, ref, f"{base}/manifests/{pick.get('digest', '')}")
        digest = (doc.get("config") or {}).get("digest")
        if not isinstance(digest, str):
            return None
        config = self._json(key, ref, f"{base}/blobs/{digest}")
        return parse_date(config.get("created"))

    def _json(self, key: str, ref: ImageRef, url: str) -> dict[str, Any]:
        data = self._request(key, ref, url, headers={"Accept": MANIFEST_TYPES}).json(key)
        return data if isinstance(data, dict) else {}
