"""The stored provider schemas: one file per pinned provider version, next to the lockfile.

`provider-schemas/<namespace>-<name>-<version>.json.gz` beside the lockfile holds exactly what
`terraform providers schema -json` prints for that one provider (gzip, written without a
timestamp so a regeneration that changes nothing changes no byte). A registry-connected
machine can replace any file with Terraform's own output; `doit provider_schemas` regenerates
them from the sources named in `stagegraph.tfschema.sources` when a pin moves.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from stagegraph.errors import StagegraphError

SCHEMA_DIR = "provider-schemas"
DEFAULT_HOST = "registry.terraform.io"


class MissingSchemaError(StagegraphError):
    """A provider pin has no stored schema: the check cannot vouch for the render."""


def full_source(source: str) -> str:
    """`hashicorp/helm` -> `registry.terraform.io/hashicorp/helm` (Terraform's own spelling)."""
    parts = source.strip().lower().split("/")
    return "/".join([DEFAULT_HOST, *parts]) if len(parts) == 2 else "/".join(parts)


def packaged_schema_dir() -> Path:
    """The schemas shipped in the installed package, next to its packaged lockfile."""
    from importlib import resources

    return Path(str(resources.files("stagegraph") / "lockfiles" / SCHEMA_DIR))


def schema_dir(lockfile: Path) -> Path:
    """`provider-schemas/` next to the lockfile when that folder has one, else the packaged one.

    A deployment that brings its own lockfile may bring its own schemas; otherwise the
    schemas of this release (package data, beside the packaged lockfile) serve it.
    """
    own = lockfile.parent / SCHEMA_DIR
    return own if own.is_dir() else packaged_schema_dir()


def schema_file(directory: Path, source: str, version: str) -> Path:
    _, namespace, name = full_source(source).split("/")
    return directory / f"{namespace}-{name}-{version}.json.gz"


def document(source: str, provider_schema: dict[str, Any]) -> dict[str, Any]:
    """The whole `terraform providers schema -json` document for one provider."""
    return {"format_version": "1.0", "provider_schemas": {full_source(source): provider_schema}}


def encode(doc: dict[str, Any]) -> bytes:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return gzip.compress(raw, compresslevel=9, mtime=0)


def write_schema(directory: Path, source: str, version: str, provider_schema: dict[str, Any]) -> Path:
    from stagegraph.atomic import write_atomic

    path = schema_file(directory, source, version)
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(path, encode(document(source, provider_schema)))
    return path


def require_schema(directory: Path, source: str, version: str, pinned_by: str) -> Path:
    """The stored schema of `source` at `version`, or an error that says what to do."""
    path = schema_file(directory, source, version)
    if not path.is_file():
        have = sorted(p.name.removesuffix(".json.gz") for p in directory.glob("*.json.gz"))
        same = [h for h in have if h.startswith(path.name.rsplit("-", 1)[0] + "-")]
        raise MissingSchemaError(
            f"{pinned_by}: provider {source} {version} has no stored schema {path}"
            f" (stored: {', '.join(same) or 'none for this provider'}); run `doit provider_schemas` "
            "to extract it, or put `terraform providers schema -json` output of that version there"
        )
    return path


def read_document(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return data
