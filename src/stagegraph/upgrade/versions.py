"""The version gate: which `nebari_version` this release of stagegraph reads.

stagegraph reads exactly one config format, that of the Nebari release named by
`CURRENT` (the `nebari_version` its `doit init` writes). An older config is refused with
the one command that brings it forward (`doit upgrade`); a newer one is refused too,
because fields added after `CURRENT` would otherwise be rejected one by one (or, worse,
a renamed field silently take its default).
"""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version

from stagegraph.schema.config import NEBARI_VERSION

CURRENT = NEBARI_VERSION


def parse(version: str) -> Version:
    """A release version with pre/dev/post parts dropped, as Nebari's `rounded_ver_parse`."""
    return Version(Version(version).base_version)


def is_version(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse(value)
    except InvalidVersion:
        return False
    return True


def gate_problem(data: dict[str, Any], filename: str) -> str | None:
    """One line saying why `data` is not in the format this release reads, or None.

    A missing `nebari_version` means the current format (the schema default, as Nebari
    reads it); a value that is no version at all is left to the schema's own message.
    """
    if "qhub_version" in data and "nebari_version" not in data:
        return (
            f"{filename}: qhub_version: a QHub config ({data['qhub_version']}); run `doit upgrade` "
            f"to bring it to Nebari {CURRENT}"
        )
    value = data.get("nebari_version")
    if not is_version(value):
        return None
    assert isinstance(value, str)
    found, current = parse(value), parse(CURRENT)
    if found < current:
        return (
            f"{filename}: nebari_version: {value} is older than {CURRENT}, the config format this "
            "release reads; run `doit upgrade` (it keeps a backup of the file and prints the diff)"
        )
    if found > current:
        return (
            f"{filename}: nebari_version: {value} is newer than {CURRENT}, the newest config format "
            "this release reads; install a newer stagegraph (pip install -U stagegraph)"
        )
    return None
