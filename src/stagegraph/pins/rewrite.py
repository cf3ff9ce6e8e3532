"""Rewrite pinned values in the lockfile without disturbing anything else in it.

The lockfile is edited by people (and by Renovate), so its comments, key order and quoting
matter. ruamel.yaml's round-trip mode keeps them; each changed value keeps its scalar
style (a `"1.5.7"` stays double-quoted, so `1.10` can never turn into a float). As a
guard against any reformatting ruamel might do on some input, the new text must differ
from the old exactly on the lines of the changed values, or nothing is written.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from stagegraph.errors import LockfileError

Path_ = tuple[str, ...]


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long comment or value
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _load(text: str, file: str) -> CommentedMap:
    try:
        data = _yaml().load(text)
    except YAMLError as exc:
        raise LockfileError(f"{file}: not valid YAML ({exc.__class__.__name__}); fix the syntax") from None
    if not isinstance(data, CommentedMap):
        raise LockfileError(f"{file}: the top level must be a mapping of pin groups")
    return data


def _parent(data: CommentedMap, path: Path_, file: str) -> CommentedMap:
    node: Any = data
    for part in path[:-1]:
        if not isinstance(node, CommentedMap) or part not in node:
            raise LockfileError(f"{file}: {'.'.join(path)}: not in the lockfile any more; re-run the bump")
        node = node[part]
    if not isinstance(node, CommentedMap) or path[-1] not in node:
        raise LockfileError(f"{file}: {'.'.join(path)}: not in the lockfile any more; re-run the bump")
    return node


def value_lines(text: str, paths: list[Path_], file: str = "lockfile") -> dict[Path_, int]:
    """0-based line of each path's value."""
    data = _load(text, file)
    out = {}
    for path in paths:
        parent = _parent(data, path, file)
        line, _col = parent.lc.value(path[-1])
        out[path] = int(line)
    return out


def rewrite_values(text: str, changes: Mapping[Path_, tuple[str, str]], file: str = "lockfile") -> str:
    """Replace each path's value `old -> new`; refuse if a value is not `old` any more.

    Returns the new text, identical to `text` except on the changed values' lines.
    """
    yaml = _yaml()
    data = _load(text, file)
    lines: set[int] = set()
    for path, (old, new) in changes.items():
        parent = _parent(data, path, file)
        current = parent[path[-1]]
        if str(current) != old:
            raise LockfileError(
                f"{file}: {'.'.join(path)}: is {current!s} now, the bump expected {old}; "
                "someone edited the lockfile meanwhile: re-run the bump"
            )
        lines.add(int(parent.lc.value(path[-1])[0]))
        parent[path[-1]] = _same_style(current, new)
    out = io.StringIO()
    yaml.dump(data, out)
    result = out.getvalue()
    before, after = text.splitlines(keepends=True), result.splitlines(keepends=True)
    touched = {i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b}
    if len(before) != len(after) or not touched <= lines:
        raise LockfileError(
            f"{file}: rewriting would reformat lines other than the pinned values; nothing was "
            "written: edit the versions by hand (see lockfiles/CHANGELOG.md for the format)"
        )
    return result


def _same_style(current: object, new: str) -> str:
    styled: str
    if isinstance(current, DoubleQuotedScalarString):
        styled = DoubleQuotedScalarString(new)
        return styled
    if isinstance(current, SingleQuotedScalarString):
        styled = SingleQuotedScalarString(new)
        return styled
    # A plain scalar stays plain; ruamel quotes it anyway if plain would read as a number.
    return new
