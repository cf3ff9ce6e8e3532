"""The Python dependencies: pyproject.toml pins exactly what the lockfile's `python:` says.

Why exact pins in pyproject.toml rather than a constraints file: stagegraph is an
application, not a library other code imports next to its own pins, and the README's two
commands (`pip install .`, `pip install '.[test]'`) must install the tested set as they are
typed, with nothing to remember. A constraints file works only for the commands that pass
`-c`; a pin in pyproject.toml holds for every install of the package. The lockfile stays the
one place the versions are decided (the `python` group of `doit bump` rewrites both files),
and `tests/test_python_pins.py` fails when the two disagree.

Lockfile keys are dotted paths, so a Python package is keyed by its normalized name
(PEP 503: `ruamel.yaml` -> `ruamel-yaml`), which PyPI's JSON API also answers to.
Transitive dependencies are not pinned here: each direct dependency pins or bounds its
own (pydantic pins pydantic-core exactly).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from stagegraph.errors import LockfileError
from stagegraph.lockfile import Lockfile

PYPROJECT = "pyproject.toml"
_QUOTED = re.compile(r'"([^"\n]+)"')


def normalize(name: str) -> str:
    """PEP 503 normalized name: what the lockfile keys Python packages by."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Dependency:
    """One requirement of pyproject.toml: `group` is `dependencies` or `test` (an extra)."""

    name: str
    group: str
    version: str | None  # the exact version when the requirement is `==X`, else None
    text: str


def _exact(req: Requirement) -> str | None:
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        return specs[0].version
    return None


def dependencies(text: str, file: str = PYPROJECT) -> list[Dependency]:
    """Every requirement of `[project] dependencies` and of each optional-dependency extra."""
    try:
        project = tomllib.loads(text).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        raise LockfileError(f"{file}: not valid TOML ({exc}); fix the syntax") from None
    groups: dict[str, list[str]] = {"dependencies": list(project.get("dependencies", []))}
    for extra, reqs in project.get("optional-dependencies", {}).items():
        groups[extra] = list(reqs)
    out = []
    for group, reqs in groups.items():
        for raw in reqs:
            try:
                req = Requirement(raw)
            except InvalidRequirement as exc:
                raise LockfileError(f"{file}: {group}: {raw!r} is not a requirement ({exc})") from None
            out.append(Dependency(normalize(req.name), group, _exact(req), raw))
    return out


def mismatches(text: str, lock: Lockfile, *, file: str = PYPROJECT, lockfile: str = "lockfile") -> list[str]:
    """One line per way pyproject.toml and the lockfile's `python:` section disagree."""
    deps = dependencies(text, file)
    pinned = {name: pin.version for name, pin in lock.python.items()}
    lines = []
    for dep in deps:
        if dep.name not in pinned:
            lines.append(
                f"{file}: {dep.group}: {dep.text!r} has no pin in {lockfile} (python.{dep.name}); add one"
            )
        elif dep.version is None:
            lines.append(
                f"{file}: {dep.group}: {dep.text!r} is not an exact pin; write {dep.name}=={pinned[dep.name]}"
            )
        elif dep.version != pinned[dep.name]:
            lines.append(
                f"{file}: {dep.group}: {dep.text!r} differs from {lockfile} python.{dep.name} "
                f"({pinned[dep.name]}); run `doit bump --group python` or edit one to match"
            )
    named = {dep.name for dep in deps}
    for name in sorted(set(pinned) - named):
        lines.append(f"{lockfile}: python.{name} is pinned but {file} does not require it; remove the pin")
    return lines


def rewrite_pins(text: str, changes: Mapping[str, tuple[str, str]], file: str = PYPROJECT) -> str:
    """pyproject.toml with each `name==old` of `changes` (normalized name -> (old, new)) moved.

    Only the version inside the quoted requirement changes; comments, order and markers stay.
    The result is parsed again and must pin exactly the new versions, or nothing is returned.
    """

    def swap(match: re.Match[str]) -> str:
        raw = match.group(1)
        try:
            req = Requirement(raw)
        except InvalidRequirement:
            return match.group(0)  # a string that is not a requirement (a description, a path)
        name = normalize(req.name)
        if name not in changes or _exact(req) != changes[name][0]:
            return match.group(0)
        old, new = changes[name]
        return '"' + re.sub(rf"==\s*{re.escape(old)}(?=\s*(;|$|,))", f"=={new}", raw, count=1) + '"'

    new_text = _QUOTED.sub(swap, text)
    got = {d.name: d.version for d in dependencies(new_text, file)}
    for name, (_, new) in changes.items():
        if name in got and got[name] != new:
            raise LockfileError(f"{file}: cannot move {name} to {new} (the requirement is not `{name}==X`)")
    return new_text


def pyproject_of(lockfile_path: Path) -> Path | None:
    """stagegraph's own pyproject.toml when the lockfile is the one of its source tree."""
    candidate = lockfile_path.resolve().parent.parent / PYPROJECT
    try:
        project = tomllib.loads(candidate.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return candidate if project.get("name") == "stagegraph" else None
