"""Version tags: parsing upstream spellings, policies, and what a bump may propose."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from stagegraph.pins.versions import Policy, allowed, choose, parse_tag

# --- explicit strategies ------------------------------------------------------------------------

releases = st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=4)
prefixes = st.sampled_from(["", "v"])
#: Variant suffixes as images use them; none of them may read as a pre-release.
variants = st.sampled_from(
    ["", "-alpine", "-alpine3.18", "-bookworm", "-slim", "-debian-12-r3", "_build", "-amd64"]
)
pre_words = st.sampled_from(["rc", "alpha", "beta", "a", "b", "dev", "pre", "preview"])
pre_suffixes = st.builds(
    lambda sep, word, num: f"{sep}{word}{num}",
    st.sampled_from(["-", "_"]),
    pre_words,
    st.sampled_from(["", ".1", "1", "-2", ".10"]),
)
policies = st.sampled_from(["patch", "minor", "major", "hold"])


def spell(prefix: str, release: list[int], suffix: str) -> str:
    return prefix + ".".join(map(str, release)) + suffix


# --- parsing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "prefix", "release", "suffix", "pre"),
    [
        ("v1.14.7", "v", "1.14.7", "", False),
        ("1.27.3-alpine", "", "1.27.3", "-alpine", False),
        ("104", "", "104", "", False),
        ("2024.1.0", "", "2024.1.0", "", False),
        ("1.31", "", "1.31", "", False),
        ("v3.0.0-rc.1", "v", "3.0.0", "-rc.1", True),
        ("1.0.0rc1", "", "1.0.0rc1", "", True),
        ("2.0.0.dev3", "", "2.0.0.dev3", "", True),
        ("1.2.post1", "", "1.2.post1", "", False),
        ("2.4.57-debian-12-r3", "", "2.4.57", "-debian-12-r3", False),
        ("1.1.0+up2", "", "1.1.0", "+up2", False),
    ],
)
def test_parse_known_spellings(raw: str, prefix: str, release: str, suffix: str, pre: bool) -> None:
    tag = parse_tag(raw)
    assert tag is not None
    assert (tag.prefix, tag.release, tag.suffix, tag.prerelease) == (prefix, Version(release), suffix, pre)
    assert tag.raw == raw


@pytest.mark.parametrize("raw", ["latest", "sha-1a2b3c", "main", "", "v", "stable-alpine", "1.0.0foo"])
def test_non_versions_are_none(raw: str) -> None:
    assert parse_tag(raw) is None


@given(prefixes, releases, variants)
def test_parse_splits_prefix_release_and_variant(prefix: str, release: list[int], suffix: str) -> None:
    tag = parse_tag(spell(prefix, release, suffix))
    assert tag is not None
    assert tag.prefix == prefix and tag.suffix == suffix and not tag.prerelease
    assert tag.release == Version(".".join(map(str, release)))


@given(prefixes, releases, pre_suffixes)
def test_pre_release_suffixes_are_pre_releases(prefix: str, release: list[int], suffix: str) -> None:
    tag = parse_tag(spell(prefix, release, suffix))
    assert tag is not None and tag.prerelease


@given(st.text(max_size=30))
def test_parse_never_raises(text: str) -> None:
    parse_tag(text)


@given(releases, releases, variants)
def test_order_follows_the_numbers(a: list[int], b: list[int], suffix: str) -> None:
    ta, tb = parse_tag(spell("", a, suffix)), parse_tag(spell("", b, suffix))
    assert ta is not None and tb is not None
    pad = max(len(a), len(b))
    assert (ta.release < tb.release) == (a + [0] * (pad - len(a)) < b + [0] * (pad - len(b)))


# --- policy -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "candidate", "policy", "ok"),
    [
        ("1.2.3", "1.2.4", "patch", True),
        ("1.2.3", "1.3.0", "patch", False),
        ("1.2.3", "1.3.0", "minor", True),
        ("1.2.3", "2.0.0", "minor", False),
        ("1.2.3", "2.0.0", "major", True),
        ("1.2.3", "1.2.4", "hold", False),
        ("1.2.3", "1.2.3", "major", False),
        ("1.2.3", "1.2.2", "major", False),
        ("104", "105", "minor", False),
        ("104", "105", "major", True),
        ("1.31", "1.32", "minor", True),
    ],
)
def test_allowed(current: str, candidate: str, policy: Policy, ok: bool) -> None:
    a, b = parse_tag(current), parse_tag(candidate)
    assert a is not None and b is not None
    assert allowed(a, b, policy) is ok


def test_choose_keeps_the_tag_format() -> None:
    tags = ["v1.14.7", "v1.15.0", "1.16.0", "v2.0.0", "v1.15.1-rc.1"]
    assert choose("v1.14.7", tags, "minor").proposed == "v1.15.0"
    assert choose("v1.14.7", tags, "minor").latest == "v2.0.0"
    alpine = ["1.27.3-alpine", "1.27.4", "1.27.4-alpine", "1.27.5-bookworm", "1.28.0-alpine-rc1"]
    assert choose("1.27.3-alpine", alpine, "patch").proposed == "1.27.4-alpine"


def test_choose_nothing_newer_or_unparseable_current() -> None:
    assert choose("1.0.0", ["0.9.0", "1.0.0", "latest"], "major").proposed is None
    assert choose("latest", ["1.0.0"], "major").proposed is None


@given(
    prefixes,
    releases,
    variants,
    st.lists(st.tuples(prefixes, releases, st.one_of(variants, pre_suffixes))),
    policies,
)
def test_proposal_is_the_newest_allowed_of_the_family(
    prefix: str,
    current: list[int],
    suffix: str,
    upstream: list[tuple[str, list[int], str]],
    policy: Policy,
) -> None:
    cur = spell(prefix, current, suffix)
    tags = [spell(p, r, s) for p, r, s in upstream]
    got = choose(cur, tags, policy).proposed
    base = parse_tag(cur)
    assert base is not None
    ok = [
        t
        for t in map(parse_tag, tags)
        if t and not t.prerelease and t.family == base.family and allowed(base, t, policy)
    ]
    if not ok:
        assert got is None
        return
    assert got is not None and got in tags
    chosen = parse_tag(got)
    assert chosen is not None
    assert chosen.family == base.family and not chosen.prerelease
    assert allowed(base, chosen, policy)
    assert chosen.release == max(t.release for t in ok)
