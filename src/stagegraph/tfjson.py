"""A small builder for Terraform JSON documents, with a sandbox twin of every resource.

Stages describe real resources (helm_release, kubernetes_namespace, kind_cluster, ...). In
the `sandbox` provider the same call produces a `terraform_data` resource whose `input` is
the very body the real resource would get, so the sandbox exercises the real data flow
(variables, references, outputs) through real Terraform while creating nothing outside the
machine. References go through `Ref.attr`, which points at the real attribute or at the
twin's `output` (which mirrors `input`); computed attributes that only a real API can
answer (a load balancer address) take an explicit sandbox value.

Convention: write nested blocks as lists of objects (`"metadata": [{...}]`), which
Terraform JSON accepts for blocks, so `metadata[0].name` works on the real resource and on
its twin alike.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from stagegraph.lockfile import ProviderPin

#: Resource arguments that Terraform treats as meta-arguments, kept on the twin itself.
_META = ("depends_on", "count", "for_each", "lifecycle")
_MISSING: Any = object()


def literal(value: Any) -> Any:
    """Escape a value taken from the config so Terraform never interpolates it.

    Terraform JSON treats every string as a template: a user's `${...}` would be evaluated.
    """
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, dict):
        return {literal(str(k)): literal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [literal(v) for v in value]
    return value


def twin_name(type_: str, name: str) -> str:
    return f"{type_}__{name}"


@dataclass(frozen=True)
class Ref:
    """A resource or data source of the module, real or sandbox twin."""

    type: str
    name: str
    sandbox: bool
    data: bool = False

    @property
    def address(self) -> str:
        if self.sandbox:
            return f"terraform_data.{twin_name(self._kind_prefix + self.type, self.name)}"
        return f"{'data.' if self.data else ''}{self.type}.{self.name}"

    @property
    def _kind_prefix(self) -> str:
        return "data_" if self.data else ""

    def attr(self, path: str, sandbox: Any = _MISSING) -> Any:
        """`${address.path}`; in the sandbox, the twin's mirrored input or `sandbox`."""
        if self.sandbox:
            if sandbox is not _MISSING:
                return sandbox
            return f"${{{self.address}.output.{path}}}"
        return f"${{{self.address}.{path}}}"


class TerraformModule:
    """Accumulates one Terraform JSON document."""

    def __init__(self, *, sandbox: bool, comment: str) -> None:
        self.sandbox = sandbox
        self._doc: dict[str, Any] = {"//": comment}

    def _section(self, *keys: str) -> dict[str, Any]:
        node = self._doc
        for key in keys:
            node = node.setdefault(key, {})
        return node

    def require(self, terraform_version: str, providers: dict[str, ProviderPin]) -> None:
        block = self._section("terraform")
        # A floor, not an exact match: users bring terraform or tofu of their own, and the
        # embedded Terraform is newer than what most clusters were first deployed with.
        block["required_version"] = f">= {terraform_version}"
        if not self.sandbox and providers:
            block["required_providers"] = {
                name: {"source": pin.source, "version": f"= {pin.version}"}
                for name, pin in sorted(providers.items())
            }

    def provider(self, name: str, body: dict[str, Any]) -> None:
        if not self.sandbox:
            self._section("provider")[name] = body

    def backend(self, kind: str, body: dict[str, Any]) -> None:
        self._section("terraform", "backend")[kind] = body

    def local(self, name: str, value: Any) -> str:
        self._section("locals")[name] = value
        return f"${{local.{name}}}"

    def resource(self, type_: str, name: str, body: dict[str, Any]) -> Ref:
        return self._add(type_, name, body, data=False)

    def data(self, type_: str, name: str, body: dict[str, Any]) -> Ref:
        return self._add(type_, name, body, data=True)

    def _add(self, type_: str, name: str, body: dict[str, Any], *, data: bool) -> Ref:
        ref = Ref(type_, name, self.sandbox, data)
        if not self.sandbox:
            section = self._section("data" if data else "resource", type_)
            if name in section:
                raise ValueError(f"duplicate {type_}.{name}")
            section[name] = body
            return ref
        twin = {k: v for k, v in body.items() if k in _META}
        if "lifecycle" in twin:
            # ignore_changes names the real resource's attributes; a twin has only `input`.
            kept = [{k: v for k, v in block.items() if k != "ignore_changes"} for block in twin["lifecycle"]]
            kept = [block for block in kept if block]
            if kept:
                twin["lifecycle"] = kept
            else:
                del twin["lifecycle"]
        payload = {k: v for k, v in body.items() if k not in _META and k != "provider"}
        twin["input"] = payload
        section = self._section("resource", "terraform_data")
        key = twin_name(("data_" if data else "") + type_, name)
        if key in section:
            raise ValueError(f"duplicate {type_}.{name}")
        section[key] = twin
        return ref

    def output(self, name: str, value: Any, description: str, sensitive: bool = False) -> None:
        out: dict[str, Any] = {"value": value, "description": description}
        if sensitive:
            out["sensitive"] = True
        self._section("output")[name] = out

    def document(self) -> dict[str, Any]:
        return self._doc


def depends(*refs: Ref) -> list[str]:
    """`depends_on` addresses that are right for real resources and twins alike."""
    return [r.address for r in refs]


# --- variables, declared once from the stage's typed inputs -----------------------------

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def tf_type(annotation: Any) -> str:
    """Terraform type constraint for a Python/pydantic annotation."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if annotation is str or origin is Literal:
        return "string"
    if annotation is bool:
        return "bool"
    if annotation in (int, float):
        return "number"
    if annotation is Any:
        return "any"
    if origin in (Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return tf_type(rest[0]) if len(rest) == 1 else "any"
    if origin in (list, tuple, typing.Sequence):
        return f"list({tf_type(args[0])})" if args else "list(any)"
    if origin in (dict, typing.Mapping):
        return f"map({tf_type(args[1])})" if args else "map(any)"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = ", ".join(f"{name} = {tf_type(f.annotation)}" for name, f in annotation.model_fields.items())
        return f"object({{{fields}}})"
    raise TypeError(f"no Terraform type for {annotation!r}")


def variables_document(
    inputs: type[BaseModel], sensitive: list[tuple[str, str]], comment: str
) -> dict[str, Any]:
    """`variable` blocks for every input field and every sensitive input."""
    variables: dict[str, Any] = {}
    for name, field in inputs.model_fields.items():
        if not _IDENT.match(name):
            raise ValueError(f"input {name!r} of {inputs.__name__} is not a Terraform name")
        variables[name] = {
            "type": tf_type(field.annotation),
            "description": field.description or name,
        }
    for name, description in sensitive:
        # default null: a secret the config does not set is simply absent, not a prompt.
        variables[name] = {"type": "string", "description": description, "sensitive": True, "default": None}
    return {"//": comment, "variable": variables} if variables else {}
