"""CustomResourceDefinition schemas as strict JSON Schemas: unknown fields are errors.

A CRD's `openAPIV3Schema` is a structural schema in which an object with `properties` and
no `additionalProperties` still accepts unknown fields at the API server only to prune them
silently. A field that is pruned is a field that does nothing, so the checks treat it as
an error: every object schema that lists properties gets `additionalProperties: false`
unless it says `x-kubernetes-preserve-unknown-fields: true`. The implicit fields of every
object (`apiVersion`, `kind`, `metadata`) and of embedded resources are added, and
`nullable: true` becomes a null-admitting type, as the API server reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

_IMPLICIT = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


def strict_schema(schema: Mapping[str, Any], *, root: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {k: strict_schema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = strict_schema(value)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            # Structural schemas only put value validations here, never new fields.
            out[key] = [_without_closure(strict_schema(v)) for v in value]
        else:
            out[key] = value
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    embedded = out.get("x-kubernetes-embedded-resource") is True
    if root or embedded:
        props = dict(out.get("properties") or {})
        for name, sub in _IMPLICIT.items():
            props.setdefault(name, sub)
        out["properties"] = props
    if (
        "properties" in out
        and "additionalProperties" not in out
        and out.get("x-kubernetes-preserve-unknown-fields") is not True
    ):
        out["additionalProperties"] = False
    return out


def _without_closure(schema: dict[str, Any]) -> dict[str, Any]:
    schema.pop("additionalProperties", None) if schema.get("additionalProperties") is False else None
    return schema


class CrdIndex:
    """Schemas of custom resources by (group, version, kind), with the CRD's source."""

    def __init__(self) -> None:
        self._schemas: dict[tuple[str, str, str], tuple[dict[str, Any], str]] = {}

    def add(self, crd: Mapping[str, Any], source: str) -> None:
        spec = crd.get("spec") or {}
        group = spec.get("group", "")
        kind = (spec.get("names") or {}).get("kind", "")
        for version in spec.get("versions") or []:
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
            key = (group, str(version.get("name")), kind)
            # The first source wins: charts are added in lockfile order, the render last.
            self._schemas.setdefault(key, (strict_schema(schema, root=True), source))

    def add_all(self, crds: Iterable[Mapping[str, Any]], source: str) -> None:
        for crd in crds:
            self.add(crd, source)

    def get(self, api_version: str, kind: str) -> tuple[dict[str, Any], str] | None:
        group, _, version = api_version.rpartition("/")
        return self._schemas.get((group, version, kind))

    def groups(self) -> set[str]:
        return {g for g, _, _ in self._schemas}
