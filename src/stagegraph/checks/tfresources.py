"""The managed resources of a rendered Terraform JSON document, as a check reads them.

In the sandbox every resource is a `terraform_data` twin whose `input` is the real body
(`stagegraph.tfjson`); `resources` yields the real type and name for twins too, so a check
reads a sandbox render and a real one alike. What a resource's strings evaluate to is
`stagegraph.tfexpr`'s business (with `twins` off, for the same reason).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    """A resource of a rendered document: its real type and name, and its body."""

    type: str
    name: str
    body: Mapping[str, Any]
    twin: bool

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}"


def resources(doc: Mapping[str, Any]) -> Iterator[Resource]:
    """Every managed resource, real or sandbox twin (data sources are not resources)."""
    for type_, named in sorted((doc.get("resource") or {}).items()):
        for name, body in sorted(named.items()):
            if type_ == "terraform_data" and "__" in name:
                real_type, real_name = name.split("__", 1)
                if real_type.startswith("data_"):
                    continue
                yield Resource(real_type, real_name, body.get("input") or {}, True)
            elif type_ != "terraform_data":
                yield Resource(type_, name, body, False)
