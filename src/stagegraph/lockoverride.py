"""Which lockfile a deployment uses, and its own small override files on top.

Pins come from the installed stagegraph: the package carries `lockfiles/versions.yaml`
(package data, equal to this repository's root `lockfiles/versions.yaml`, which `doit bump`
edits; tests/test_packaged_lockfile.py keeps them equal). A deployment folder that holds a
full `lockfiles/versions.yaml` of its own (this repository does) uses that one instead, and
`STAGEGRAPH_LOCKFILE` beats both.

A deployment changes single pins without copying the whole file: `lockfiles/overrides.yaml`
(every config of the folder) and `lockfiles/overrides.<env>.yaml` (one environment) hold
only the keys they change, merged key by key over the base (`helm_charts: {traefik:
{version: "34.0.0"}}` keeps the repository and chart of the base pin). `doit validate` and
`doit graph` name every overridden pin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stagegraph.errors import LockfileError
from stagegraph.lockfile import DEFAULT_LOCKFILE, Lockfile, pin_digest

OVERRIDES = Path("lockfiles") / "overrides.yaml"


def packaged_lockfile() -> Path:
    """The lockfile shipped inside the installed stagegraph package."""
    return Path(str(resources.files("stagegraph") / "lockfiles" / "versions.yaml"))


#: In stagegraph's own source tree: the copy that becomes package data.
PACKAGED_COPY = Path("src") / "stagegraph" / "lockfiles" / "versions.yaml"


def sync_packaged_copy(folder: Path, lockfile: Path) -> bool:
    """After `doit bump` in stagegraph's own repository: keep the package's copy equal."""
    copy = folder / PACKAGED_COPY
    if not copy.is_file() or lockfile.resolve() != (folder / DEFAULT_LOCKFILE).resolve():
        return False
    from stagegraph.atomic import write_atomic

    return write_atomic(copy, lockfile.read_bytes())


def base_lockfile(folder: Path, environ: Mapping[str, str], env_var: str) -> Path:
    explicit = environ.get(env_var)
    if explicit:
        return Path(explicit)
    own = folder / DEFAULT_LOCKFILE
    return own if own.is_file() else packaged_lockfile()


def override_files(folder: Path, environment: str) -> list[Path]:
    """The override files that exist for this config, in the order they apply."""
    names = [OVERRIDES]
    if environment:
        names.append(OVERRIDES.with_name(f"overrides.{environment}.yaml"))
    return [folder / name for name in names if (folder / name).is_file()]


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LockfileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe
    except yaml.YAMLError:
        raise LockfileError(f"{path}: not valid YAML; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LockfileError(f"{path}: the top level must be a mapping of pin groups, as in the lockfile")
    return data


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_with_overrides(base: Path, overrides: Sequence[Path]) -> tuple[Lockfile, dict[str, str]]:
    """The lockfile with `overrides` merged over it, and pin key -> the file that changed it."""
    from stagegraph.lockfile import load_lockfile

    base_lock = lock = load_lockfile(base)
    if not overrides:
        return lock, {}
    data: dict[str, Any] = lock.model_dump(mode="json", exclude_unset=True)
    changed_by: dict[str, str] = {}
    for path in overrides:
        data = _merge(data, _read(path))
        try:
            merged = Lockfile.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise LockfileError(
                f"{path}: {loc}: {err['msg']} (got {err.get('input')!r}); an override holds only the keys "
                f"it changes, in the lockfile's shape"
            ) from None
        for key in merged.keys():  # noqa: SIM118 - Lockfile.keys(), not a dict
            if _digest(lock, key) != _digest(merged, key):
                changed_by[key] = str(path)
        lock = merged
    # A later file may set a pin back to the base value: then it is not overridden.
    return lock, {k: f for k, f in changed_by.items() if _digest(base_lock, k) != _digest(lock, k)}


def _digest(lock: Lockfile, key: str) -> str | None:
    try:
        return pin_digest(lock.pin(key))
    except LockfileError:
        return None  # a pin this lockfile does not have
