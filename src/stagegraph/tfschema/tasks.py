"""Actions behind `doit provider_schemas`, and the lockfile-level schema check.

`provider_schemas_action` keeps `provider-schemas/` beside the lockfile (this release's: `src/stagegraph/lockfiles/provider-schemas/`) in step with the lockfile's
`providers:` pins (maintainers only: it needs npm, or git for the three SDKv2 providers);
`missing_schemas` needs nothing but the committed files. They return text for the action
layer to print; they print nothing themselves. The check itself is
`stagegraph.checks.tfproviders` (`doit check`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagegraph.tfschema.store import MissingSchemaError, require_schema, schema_dir, schema_file

if TYPE_CHECKING:
    from stagegraph.lockfile import Lockfile
    from stagegraph.project import Project

PROVIDER_SCHEMAS_PARAMS: list[dict[str, Any]] = [
    {
        "name": "force",
        "long": "force",
        "type": bool,
        "default": False,
        "help": "regenerate every pinned provider's schema, not only the missing ones",
    },
    {
        "name": "checkout",
        "long": "checkout",
        "type": str,
        "default": "",
        "help": "a local checkout of the provider's repository at the pinned tag (SDKv2 providers; "
        "default: git clone it)",
    },
]


def missing_schemas(lock: Lockfile, lockfile: Path, lockfile_name: str) -> list[str]:
    """One line per `providers:` pin that has no stored schema (empty when all are there)."""
    problems: list[str] = []
    directory = schema_dir(lockfile)
    for key, pin in sorted(lock.providers.items()):
        try:
            require_schema(directory, pin.source, pin.version, f"{lockfile_name}: providers.{key}")
        except MissingSchemaError as exc:
            problems.append(str(exc))
    return problems


def provider_schemas_action(project: Project, force: bool, checkout: str) -> str:
    from stagegraph.tfschema.sources import regenerate
    from stagegraph.tfschema.store import write_schema

    directory = schema_dir(project.lockfile_path)
    lines: list[str] = []
    for key, pin in sorted(project.lock.providers.items()):
        path = schema_file(directory, pin.source, pin.version)
        if path.is_file() and not force:
            lines.append(f"providers.{key}: {pin.source} {pin.version}: stored ({path.name})")
            continue
        schema = regenerate(pin.source, pin.version, Path(checkout) if checkout else None)
        write_schema(directory, pin.source, pin.version, schema)
        counts = (
            f"{len(schema['resource_schemas'])} resources, {len(schema['data_source_schemas'])} data sources"
        )
        lines.append(f"providers.{key}: {pin.source} {pin.version}: wrote {path.name} ({counts})")
    return "\n".join(lines)
