"""Evaluate the strings of a rendered Terraform JSON document as far as the render alone can.

Two readers need this: the prediction of a stage's outputs (`tfpredict`: `status` and `why`
must say what the next deploy applies) and `doit check` (which reads what a render hands
to its providers: Helm values, manifest bodies). Both ask the same question of the same
language, so one evaluator answers it. In Terraform JSON every string is a template:
`"${var.domain}"` keeps the variable's type, `"https://${var.domain}/x"` is text with an
interpolation, `$${` and `%%{` are escapes, `%{...}` a directive.

Known: literals, variables the caller supplies, locals, references into them
(`local.a.b[0]`), and, when asked, a sandbox twin's `terraform_data.X.output` (which
mirrors its `input`). Anything else (another resource's attribute, an operator, a
function, a directive) is `UNKNOWN`: known only at apply time, as Terraform's plan says of
it too. Callers never guess about an UNKNOWN.

Pure: JSON documents and variables in, values out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final


class _Unknown:
    """A value Terraform knows only at apply time."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN: Final[Any] = _Unknown()

#: What an unknown interpolation reads as in shape mode: a plain word in YAML and JSON strings.
SHAPE_WORD: Final = "stagegraph-unknown"

#: `var.a`, `local.b`, `terraform_data.c` at the head of a reference.
_HEAD = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)")
#: `.name` and `[0]` steps of the rest of a reference like `var.a.b[0].c`.
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")
_CALL = re.compile(r"(?P<fn>jsonencode|yamlencode)\((?P<arg>.*)\)", re.DOTALL)


def is_known(value: Any) -> bool:
    """No UNKNOWN anywhere inside `value`."""
    if value is UNKNOWN:
        return False
    if isinstance(value, dict):
        return all(is_known(v) for v in value.values())
    if isinstance(value, list):
        return all(is_known(v) for v in value)
    return True


class Evaluator:
    """Evaluates the values of Terraform JSON documents (one module's files) that need no apply.

    variables: the module's input variables the caller knows (others are UNKNOWN).
    twins: read a sandbox twin's `terraform_data.X.output` as its `input`. The checks leave
      it off so that a sandbox render and a real one read alike.
    calls: evaluate `jsonencode(X)` / `yamlencode(X)` with Python's encoders. The structure
      is right, the text is not Terraform's to the byte (key order, YAML quoting), so a
      caller comparing with what Terraform records leaves it off.
    shape: a template string keeps its text, each interpolation it cannot know replaced by
      SHAPE_WORD; for checks of a string's form (YAML a chart splices), not its value.
    """

    def __init__(
        self,
        docs: Iterable[Mapping[str, Any]],
        variables: Mapping[str, Any] | None = None,
        *,
        twins: bool = False,
        calls: bool = False,
        shape: bool = False,
    ) -> None:
        self._variables: Mapping[str, Any] = variables or {}
        self._locals: dict[str, Any] = {}
        self._twins: dict[str, Any] = {}
        for doc in docs:
            locals_ = doc.get("locals")
            if isinstance(locals_, dict):
                self._locals.update(locals_)
            resources = doc.get("resource")
            if twins and isinstance(resources, dict) and isinstance(resources.get("terraform_data"), dict):
                self._twins.update(resources["terraform_data"])
        self._calls = calls
        self._shape = shape
        # References being evaluated: a local (or twin) that reaches itself is UNKNOWN, not a hang.
        self._busy: set[str] = set()

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
        """A template string: one whole interpolation keeps its value's type, else text."""
        if text.startswith("${") and _close(text, 2) == len(text):
            return self.expression(text[2:-1].strip())
        parts: list[Any] = []
        i = start = 0
        while i < len(text):
            if text.startswith(("$${", "%%{"), i):
                parts += [text[start:i], text[i + 1 : i + 3]]
                i = start = i + 3
            elif text.startswith(("${", "%{"), i):
                end = _close(text, i + 2)
                if end is None:
                    return UNKNOWN  # unbalanced: Terraform would refuse it
                directive = text[i] == "%"
                value = UNKNOWN if directive else self.expression(text[i + 2 : end - 1].strip())
                if not isinstance(value, (str, int, float, bool)):
                    # Unknown, or null or a collection, which Terraform refuses to interpolate.
                    if not self._shape:
                        return UNKNOWN
                    value = SHAPE_WORD
                parts += [text[start:i], value]
                i = start = end
            else:
                i += 1
        parts.append(text[start:])
        return "".join(_as_string(p) for p in parts)

    def structure(self, text: Any) -> Any:
        """What `jsonencode(X)` / `yamlencode(X)` encodes: X itself, for the checks to read.

        A string that is not such a call is returned evaluated (it may be a literal YAML or
        JSON text, which the caller parses).
        """
        if not isinstance(text, str):
            return self.value(text)
        if text.startswith("${") and _close(text, 2) == len(text):
            call = _CALL.fullmatch(text[2:-1].strip())
            if call:
                return self.operand(call.group("arg").strip())
        return self.string(text)

    def operand(self, expr: str) -> Any:
        """A function argument: a reference, or an object/list literal written as JSON."""
        if expr[:1] in "{[":
            try:
                return self.value(json.loads(expr))
            except ValueError:
                return UNKNOWN
        return self.expression(expr)

    def expression(self, expr: str) -> Any:
        """The body of one `${...}`."""
        call = _CALL.fullmatch(expr)
        if call:
            inner = self.operand(call.group("arg").strip()) if self._calls else UNKNOWN
            if not is_known(inner):
                return UNKNOWN
            if call.group("fn") == "jsonencode":
                return json.dumps(inner, separators=(",", ":"))
            import yaml

            return yaml.safe_dump(inner, sort_keys=True)
        return self._reference(expr)

    def _reference(self, expr: str) -> Any:
        head = _HEAD.match(expr)
        if head is None:
            return UNKNOWN
        kind, name = head.groups()
        rest = expr[head.end() :]
        key = f"{kind}.{name}"
        if kind == "var":
            return _walk(self._variables.get(name, UNKNOWN), rest)
        if kind == "local" and name in self._locals:
            raw = self._locals[name]
        elif kind == "terraform_data" and name in self._twins and rest.startswith(".output"):
            raw = self._twins[name].get("input")
            rest = rest[len(".output") :]
        else:
            return UNKNOWN
        if key in self._busy:
            return UNKNOWN
        self._busy.add(key)
        try:
            return _walk(self.value(raw), rest)
        finally:
            self._busy.discard(key)


def _walk(value: Any, path: str) -> Any:
    i = 0
    while i < len(path):
        step = _STEP.match(path, i)
        if step is None:
            return UNKNOWN  # an operator or a function: not evaluated here
        key, index = step.groups()
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return UNKNOWN
        i = step.end()
    return value


def _as_string(value: Any) -> str:
    """How Terraform writes a primitive into a template."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Terraform writes the number 1.0 as "1"
    return value if isinstance(value, str) else str(value)


def _close(text: str, i: int) -> int | None:
    """Index just past the `}` that closes the interpolation whose body starts at `i`."""
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            end = _skip_quoted(text, i + 1)
            if end is None:
                return None
            i = end
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i + 1
            depth -= 1
        i += 1
    return None


def _skip_quoted(text: str, i: int) -> int | None:
    """Index just past the quote that ends the quoted template starting at `i`.

    A quoted string inside an expression is itself a template: its `${...}` may hold
    quotes and braces of its own.
    """
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        elif text.startswith(("$${", "%%{"), i):
            i += 3
        elif text.startswith(("${", "%{"), i):
            end = _close(text, i + 2)
            if end is None:
                return None
            i = end
        else:
            i += 1
    return None
