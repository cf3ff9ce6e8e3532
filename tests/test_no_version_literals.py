"""Every version in a render comes from the lockfile: no version literal hides in stage code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# x.y or x.y.z (optionally v-prefixed) standing alone: a version ("1.29", "v3.2" too). IP
# addresses never match as a whole because of the look-arounds (172.18.255.200 has more
# parts), nor do quantities such as 2.5Gi.
VERSION = re.compile(r"(?<![\w.])v?\d+\.\d+(?:\.\d+)?(?:[-+][\w.]+)?(?![\w.])")


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_version_literal_in_stage_code() -> None:
    offenders = []
    for path in sorted((ROOT / "src" / "stagegraph" / "stages").rglob("*.py")):
        for line, text in _string_constants(path):
            for match in VERSION.finditer(text):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group()!r}")
    assert not offenders, "versions belong in lockfiles/versions.yaml:\n" + "\n".join(offenders)


def test_the_detector_finds_versions() -> None:
    """Guard the guard: the pattern must catch the kinds of literal it exists to catch."""
    for text in ("traefik:v3.2.1", "2.35.1", "quay.io/nebari/x:2025.10.1", "1.27.3-alpine", "1.29", "v3.2"):
        assert VERSION.search(text), text
    for text in (
        "172.18.255.200-172.18.255.250",
        "127.0.0.1",
        "metallb.io/v1beta1",
        "kind.x-k8s.io/v1alpha4",
        "2.5Gi",
    ):
        assert not VERSION.search(text), text
