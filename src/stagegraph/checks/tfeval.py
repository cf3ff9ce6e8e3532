"""Read what a rendered Terraform JSON document will hand to its providers, without Terraform.

The stages keep structured values in `locals` and pass them as `jsonencode(local.x)` or
`yamlencode(local.x)` (Helm values, manifest bodies), or as a JSON object literal inside
`yamlencode({...})`. This module evaluates exactly those forms. Anything that only
Terraform can know at apply time (a variable, another resource's attribute, a function of
them) becomes `UNKNOWN`, and the checks ignore what they cannot know rather than guess.

In the sandbox every resource is a `terraform_data` twin whose `input` is the real body
(`stagegraph.tfjson`); `resources` yields the real type and name for twins too, so a check
reads a sandbox render and a real one alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


class _Unknown:
    """A value Terraform knows only at plan or apply time."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN: Any = _Unknown()


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


def contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


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


_WHOLE = re.compile(r"^\$\{(?P<expr>.*)\}$", re.DOTALL)
_CALL = re.compile(r"^(?P<fn>jsonencode|yamlencode)\((?P<arg>.*)\)$", re.DOTALL)
_LOCAL = re.compile(r"^local\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)$")


class Evaluator:
    """Evaluates the values of one Terraform JSON document that need no Terraform."""

    def __init__(self, doc: Mapping[str, Any], *, shape: bool = False) -> None:
        self._locals: Mapping[str, Any] = doc.get("locals") or {}
        self._busy: set[str] = set()
        # shape: a template string keeps its text, each interpolation replaced by
        # SHAPE_WORD; for checks of a string's form (YAML a chart splices), not its value.
        self._shape = shape

    def value(self, raw: Any) -> Any:
        """A JSON value as Terraform reads it (every string is a template)."""
        if isinstance(raw, str):
            return self.string(raw)
        if isinstance(raw, dict):
            return {k: self.value(v) for k, v in raw.items()}
        if isinstance(raw, list):
            return [self.value(v) for v in raw]
        return raw

    def string(self, text: str) -> Any:
        whole = _WHOLE.match(text)
        if whole and _single_interpolation(text):
            return self.expression(whole.group("expr").strip())
        if _has_template(text):
            return _shape_of(text) if self._shape else UNKNOWN
        return text.replace("$${", "${").replace("%%{", "%{")

    def structure(self, text: Any) -> Any:
        """What `jsonencode(X)` / `yamlencode(X)` encodes: X itself, for the checks to read.

        A string that is not such a call is returned evaluated (it may be a literal YAML or
        JSON text, which the caller parses).
        """
        if not isinstance(text, str):
            return self.value(text)
        whole = _WHOLE.match(text)
        if whole and _single_interpolation(text):
            call = _CALL.match(whole.group("expr").strip())
            if call:
                return self.operand(call.group("arg").strip())
        return self.string(text)

    def operand(self, expr: str) -> Any:
        """A function argument: a local, or an object/list literal written as JSON."""
        local = _LOCAL.match(expr)
        if local:
            return self.local(local.group("name"))
        if expr[:1] in "{[":
            try:
                return self.value(json.loads(expr))
            except ValueError:
                return UNKNOWN
        return UNKNOWN

    def expression(self, expr: str) -> Any:
        local = _LOCAL.match(expr)
        if local:
            return self.local(local.group("name"))
        call = _CALL.match(expr)
        if call:
            inner = self.operand(call.group("arg").strip())
            if contains_unknown(inner):
                return UNKNOWN
            if call.group("fn") == "jsonencode":
                return json.dumps(inner, separators=(",", ":"))
            import yaml

            return yaml.safe_dump(inner, sort_keys=True)
        return UNKNOWN

    def local(self, name: str) -> Any:
        if name not in self._locals or name in self._busy:
            return UNKNOWN
        self._busy.add(name)
        try:
            return self.value(self._locals[name])
        finally:
            self._busy.discard(name)


#: What an interpolation reads as in shape mode: a plain word in YAML and JSON strings.
SHAPE_WORD = "stagegraph-unknown"
_INNERMOST = re.compile(r"(?<![$%])[$%]\{[^{}]*\}")


def _shape_of(text: str) -> str:
    escaped = text.replace("$${", "\x00D").replace("%%{", "\x00P")
    for _ in range(20):  # nesting depth of interpolations; renders use two at most
        new = _INNERMOST.sub(SHAPE_WORD, escaped)
        if new == escaped:
            break
        escaped = new
    return escaped.replace("\x00D", "${").replace("\x00P", "%{")


def _has_template(text: str) -> bool:
    """An unescaped `${` or `%{` (Terraform escapes them as `$${` and `%%{`)."""
    return bool(re.search(r"(?<![$])\$\{|(?<![%])%\{", text.replace("$${", "").replace("%%{", "")))


def _single_interpolation(text: str) -> bool:
    """`${...}` spans the whole string (its braces balance only at the very end)."""
    depth = 0
    in_string = False
    i = 2
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i == len(text) - 1
            depth -= 1
        i += 1
    return False
