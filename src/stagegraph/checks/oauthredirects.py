"""Check: every OAuth callback a service is given is a redirect URI its Keycloak client allows.

Keycloak compares redirect URIs exactly (a trailing `*` is the only wildcard), so a
callback that differs by one slash fails every login with "Invalid redirect uri". The
check reads the clients' `valid_redirect_uris` (06) and every callback URL the render hands
to a service (07, 08: a string holding `https://${var.domain}/...callback...`), compares
their paths on the platform's origin, and names each callback no client allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from stagegraph.checks import CheckRun, Finding, register
from stagegraph.checks.tfresources import resources

NAME = "oauth-redirects"

#: The platform's origin as the stages write it: `https://${var.domain}` or `${var.base_url}`.
_ORIGIN = r"(?:https?://\$\{var\.domain\}|\$\{var\.base_url\})"
_CALLBACK = re.compile(_ORIGIN + r"(/[^\s\"'&,]*callback[^\s\"'&,]*)")
_REDIRECT = re.compile("^" + _ORIGIN + r"(/.*)$")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for sub in value.values():
            yield from _strings(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _strings(sub)


def _allowed(path: str, patterns: set[str]) -> bool:
    return any(path == p or (p.endswith("*") and path.startswith(p[:-1])) for p in patterns)


@register(NAME, "OAuth callbacks given to services are redirect URIs their Keycloak clients allow")
def check_oauth_redirects(run: CheckRun) -> Iterator[Finding]:
    allowed: set[str] = set()
    for stage in run.stages:
        for doc in stage.terraform_documents().values():
            for res in resources(doc):
                if res.type == "keycloak_openid_client":
                    for uri in res.body.get("valid_redirect_uris") or []:
                        match = _REDIRECT.match(str(uri))
                        if match:
                            allowed.add(match.group(1))
    if not allowed:
        return  # no Keycloak clients in this render: nothing to compare against
    for stage in run.stages:
        for file, doc in stage.terraform_documents().items():
            for text in _strings({k: v for k, v in doc.items() if k != "output"}):
                for path in sorted(set(_CALLBACK.findall(text))):
                    if not _allowed(path, allowed):
                        yield Finding.problem(
                            stage.name,
                            NAME,
                            f"{file}: callback {path} is not a redirect URI of any Keycloak client "
                            f"(allowed: {', '.join(sorted(allowed))}); Keycloak compares them exactly",
                        )
