"""Permission scopes of Nebari's RBAC proposal ("RFD - Nebari Permissions Model"), parsed.

A scope borrows JupyterHub's syntax:

    [<access-level>:]<resource>[:<subresource>][!<object>[=<objectname>]]

- `<resource>:<subresource>` filters vertically (`read:users:name`);
- `!<object>=<objectname>` filters horizontally (`read:shared!shared=pycon`); a bare
  `!<object>` means "the holder's own" as in JupyterHub (`shares!user`);
- without an access level the scope grants every access level (`conda-store`).

Keycloak stores a role's scopes as one comma-separated attribute, so a scope can hold no
comma; the parser rejects anything the grammar does not allow and names the bad part, since
a scope that silently means something else would grant the wrong permissions. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from stagegraph.errors import StagegraphError

#: Access levels a scope may start with: the RFD's read/write/create and JupyterHub's own.
ACCESS_LEVELS = ("access", "admin", "create", "delete", "list", "read", "write")
#: How the grammar reads, for error messages.
SYNTAX = "[<access>:]<resource>[:<subresource>][!<object>[=<name>]]"

NAME_RE = re.compile(r"[a-z][a-z0-9_-]*")
#: Object names are user, group, namespace or server names (`user/server` in JupyterHub);
#: `*` is conda-store's wildcard. No `,` (the attribute separator), `!`, `=` or `:`.
OBJECT_NAME_RE = re.compile(r"[A-Za-z0-9._@/*+-]+")


class ScopeError(StagegraphError, ValueError):
    """A scope that does not follow the grammar; `part` is the piece to fix.

    Also a ValueError so that a pydantic validator can let it through as a config problem.
    """

    def __init__(self, scope: str, part: str, problem: str) -> None:
        self.scope = scope
        self.part = part
        self.problem = problem
        super().__init__(f"scope {scope!r}: {problem}")


@dataclass(frozen=True)
class Scope:
    """One parsed scope; `str(scope)` gives back the text it was parsed from."""

    resource: str
    access: str | None = None
    subresource: str | None = None
    object: str | None = None
    object_name: str | None = None

    def __str__(self) -> str:
        text = self.resource
        if self.access is not None:
            text = f"{self.access}:{text}"
        if self.subresource is not None:
            text = f"{text}:{self.subresource}"
        if self.object is not None:
            text = f"{text}!{self.object}"
            if self.object_name is not None:
                text = f"{text}={self.object_name}"
        return text


def near_access_level(word: str) -> str | None:
    """The access level `word` is probably a typo of (`reed` -> `read`), if any."""
    if word in ACCESS_LEVELS:
        return None
    close = difflib.get_close_matches(word, ACCESS_LEVELS, n=1, cutoff=0.75)
    return close[0] if close else None


def parse_scope(text: str) -> Scope:
    """Parse one scope, or raise ScopeError naming the part that breaks the grammar."""
    if not text:
        raise ScopeError(text, text, "the scope is empty")
    if any(ch.isspace() for ch in text):
        raise ScopeError(text, text, "a scope holds no spaces; list each scope as its own item")
    if "," in text:
        raise ScopeError(text, text, "a scope holds no ','; list each scope as its own item")
    head, bang, tail = text.partition("!")
    access, resource, subresource = _head(text, head)
    obj: str | None = None
    name: str | None = None
    if bang:
        obj, name = _filter(text, tail)
    return Scope(resource=resource, access=access, subresource=subresource, object=obj, object_name=name)


def parse_scopes(texts: Iterable[str]) -> tuple[Scope, ...]:
    return tuple(parse_scope(t) for t in texts)


def _head(text: str, head: str) -> tuple[str | None, str, str | None]:
    if not head:
        raise ScopeError(text, text, "no resource before '!'; write <resource>!<object>=<name>")
    segments = head.split(":")
    if "" in segments:
        raise ScopeError(text, head, f"{head!r} has an empty part around ':'")
    first = segments[0]
    access: str | None = None
    if first in ACCESS_LEVELS:
        if len(segments) == 1:
            raise ScopeError(
                text, first, f"access level {first!r} needs a resource after it, e.g. {first}:shared"
            )
        access, segments = first, segments[1:]
    elif len(segments) > 1 and (guess := near_access_level(first)) is not None:
        raise ScopeError(
            text,
            first,
            f"unknown access level {first!r}; did you mean {guess!r}? ({', '.join(ACCESS_LEVELS)})",
        )
    if len(segments) > 2:
        extra = ":".join(segments[2:])
        raise ScopeError(text, extra, f"{extra!r} is one ':' part too many; at most <resource>:<subresource>")
    for kind, segment in zip(("resource", "subresource"), segments, strict=False):
        if NAME_RE.fullmatch(segment) is None:
            raise ScopeError(
                text,
                segment,
                f"{kind} {segment!r} should be lowercase letters, digits, - or _, starting with a letter",
            )
    return access, segments[0], segments[1] if len(segments) == 2 else None


def _filter(text: str, tail: str) -> tuple[str, str | None]:
    part = f"!{tail}"
    if not tail:
        raise ScopeError(text, part, "nothing after '!'; write !<object>=<name>, e.g. !shared=pycon")
    if "!" in tail:
        raise ScopeError(text, part, f"{part!r} has more than one '!'; a scope takes one filter")
    obj, eq, name = tail.partition("=")
    if NAME_RE.fullmatch(obj) is None:
        raise ScopeError(
            text, obj, f"object {obj!r} should be lowercase letters, digits, - or _, starting with a letter"
        )
    if not eq:
        return obj, None
    if not name:
        raise ScopeError(text, part, f"the name after '=' in {part!r} is empty")
    if OBJECT_NAME_RE.fullmatch(name) is None:
        raise ScopeError(text, name, f"object name {name!r} may hold only letters, digits and . _ @ / * + -")
    return obj, name
