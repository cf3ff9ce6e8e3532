"""Version tags as registries spell them, and which newer one a policy allows.

Upstream tags are not PEP 440: images use `v1.14.7` and `1.27.3-alpine`, charts use plain
`104` or `2024.1.0`. A tag is split into a prefix (`v` or nothing), a numeric release that
`packaging.version` orders, and a suffix (`-alpine`). Proposals always come from upstream's
own list and must share the current tag's prefix and suffix, so a pin keeps its format
(`v1.14.7` -> `v1.15.0`, `1.27.3-alpine` -> `1.27.4-alpine`, never `1.27.4`), and a variant
is never swapped for another (`-alpine` for `-bookworm`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from packaging.version import InvalidVersion, Version

Policy = Literal["patch", "minor", "major", "hold"]

_NUMERIC = re.compile(r"\d+(?:\.\d+)*")
# Suffixes that mark a pre-release rather than a variant. `-alpine` starts with "a" but is
# a variant, hence the look-ahead: a pre-release word ends or is followed by a number.
_PRE_SUFFIX = re.compile(r"(?i)(alpha|beta|rc|pre|preview|dev|snapshot|nightly|canary|a|b|m)(?=$|[.\-_]?\d)")


@dataclass(frozen=True)
class Tag:
    """One parsed tag. `raw` is exactly what upstream publishes; it is what gets pinned."""

    raw: str
    prefix: str
    release: Version
    suffix: str
    prerelease: bool

    @property
    def family(self) -> tuple[str, str]:
        """Tags of one family are the same artefact flavour and may replace each other."""
        return (self.prefix, self.suffix)

    def part(self, index: int) -> int:
        """Release component by position (missing ones are 0: `1.31` is `1.31.0`)."""
        parts = self.release.release
        return parts[index] if index < len(parts) else 0


def parse_tag(raw: str) -> Tag | None:
    """Parse a version tag; None for tags that are not versions (`latest`, `sha-1a2b`)."""
    text = raw.strip()
    prefix = ""
    if len(text) > 1 and text[0] in "vV" and text[1].isdigit():
        prefix, text = text[0], text[1:]
    match = _NUMERIC.match(text)
    if match is None:
        return None
    core, rest = match.group(), text[match.end() :]
    if not rest:
        return Tag(raw, prefix, Version(core), "", prerelease=False)
    if rest[0] in "-_+":
        pre = bool(_PRE_SUFFIX.match(rest[1:]))
        return Tag(raw, prefix, Version(core), rest, prerelease=pre)
    # A PEP 440 spelling such as 1.0.0rc1, 2.0.dev3 or 1.2.post1 (PyPI, some charts).
    try:
        full = Version(text)
    except InvalidVersion:
        return None
    if full.local is not None:
        return None
    return Tag(raw, prefix, full, "", prerelease=full.is_prerelease)


def allowed(current: Tag, candidate: Tag, policy: Policy) -> bool:
    """Whether `policy` lets `current` move to `candidate` (which must be newer)."""
    if policy == "hold" or candidate.release <= current.release:
        return False
    if policy == "major":
        return True
    if candidate.part(0) != current.part(0):
        return False
    return policy == "minor" or candidate.part(1) == current.part(1)


@dataclass(frozen=True)
class Choice:
    """What a bump proposes for one pin: the newest allowed and the newest overall."""

    proposed: str | None
    latest: str | None


def candidates(current: Tag, tags: Iterable[str]) -> list[Tag]:
    """Stable tags of the current tag's family, oldest first (ties broken by spelling)."""
    out = []
    for raw in tags:
        tag = parse_tag(raw)
        if tag is not None and not tag.prerelease and tag.family == current.family:
            out.append(tag)
    out.sort(key=lambda t: (t.release, t.raw))
    return out


def choose(current_raw: str, tags: Iterable[str], policy: Policy) -> Choice:
    """Newest tag the policy allows (None: stay) and newest newer tag of the family at all.

    An unparseable current pin gets no proposal: guessing a format would pin something the
    stage was never rendered with.
    """
    current = parse_tag(current_raw)
    if current is None:
        return Choice(None, None)
    family = [t for t in candidates(current, tags) if t.release > current.release]
    latest = family[-1].raw if family else None
    ok = [t for t in family if allowed(current, t, policy)]
    return Choice(ok[-1].raw if ok else None, latest)
