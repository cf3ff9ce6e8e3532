"""Predict a rendered stage's output values without running Terraform.

`status` and `why` must say what the next deploy will apply, and a stage downstream of a
re-applied one re-applies only when an output it reads changes. Many outputs are known
from the render alone: literals (`"domain": "demo.example.com"`), variables
(`"${var.base_url}"`), locals, and in the sandbox the `terraform_data` twins, whose
`output` mirrors their `input`. Anything else (a real resource's computed attribute, a
function call, a sensitive variable) is `UNKNOWN`: known only after the apply, which is
exactly what Terraform's plan says of it too.

Pure: JSON documents and variables in, values out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final


class _Unknown:
    """Marker for a value known only after apply."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN: Final = _Unknown()

#: `name`, `.name`, `[0]` steps of a reference like `var.a.b[0].c`.
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")
_HEAD = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)")
_MAX_DEPTH = 32
#: Escapes, interpolations and directives of a Terraform string template.
_TOKEN = re.compile(r"\$\$\{|%%\{|\$\{([^}]*)\}|%\{")
_LONE = re.compile(r"\$\{([^}]*)\}")


def is_known(value: Any) -> bool:
    """No UNKNOWN anywhere inside `value`."""
    if value is UNKNOWN:
        return False
    if isinstance(value, dict):
        return all(is_known(v) for v in value.values())
    if isinstance(value, list):
        return all(is_known(v) for v in value)
    return True


class _Evaluator:
    def __init__(self, docs: list[Mapping[str, Any]], variables: Mapping[str, Any]) -> None:
        self.variables = variables
        self.locals: dict[str, Any] = {}
        self.twins: dict[str, Any] = {}
        for doc in docs:
            locals_ = doc.get("locals")
            if isinstance(locals_, dict):
                self.locals.update(locals_)
            resources = doc.get("resource")
            if isinstance(resources, dict) and isinstance(resources.get("terraform_data"), dict):
                self.twins.update(resources["terraform_data"])

    def value(self, node: Any, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            return UNKNOWN
        if isinstance(node, str):
            return self._template(node, depth)
        if isinstance(node, dict):
            return {k: self.value(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v, depth + 1) for v in node]
        return node

    def _template(self, text: str, depth: int) -> Any:
        lone = _LONE.fullmatch(text)
        if lone is not None:
            return self._reference(lone.group(1).strip(), depth)  # keeps the value's type
        parts: list[Any] = []
        pos = 0
        for token in _TOKEN.finditer(text):
            parts.append(text[pos : token.start()])
            match token.group(0):
                case "$${":
                    parts.append("${")
                case "%%{":
                    parts.append("%{")
                case "%{":
                    return UNKNOWN  # a template directive: not evaluated here
                case _:
                    parts.append(self._reference(token.group(1).strip(), depth))
            pos = token.end()
        parts.append(text[pos:])
        if any(p is UNKNOWN for p in parts):
            return UNKNOWN
        return "".join(_as_string(p) for p in parts)

    def _reference(self, expr: str, depth: int) -> Any:
        head = _HEAD.match(expr)
        if head is None:
            return UNKNOWN
        kind, name = head.groups()
        rest = expr[head.end() :]
        if kind == "var":
            base: Any = self.variables.get(name, UNKNOWN)
        elif kind == "local":
            base = self.value(self.locals[name], depth + 1) if name in self.locals else UNKNOWN
        elif kind == "terraform_data" and name in self.twins and rest.startswith(".output"):
            base = self.value(self.twins[name].get("input"), depth + 1)
            rest = rest[len(".output") :]
        else:
            return UNKNOWN
        return _walk(base, rest)


def _walk(value: Any, path: str) -> Any:
    i = 0
    while i < len(path):
        step = _STEP.match(path, i)
        if step is None:
            return UNKNOWN  # an operator or a function: not evaluated here
        key, index = step.groups()
        if value is UNKNOWN:
            return UNKNOWN
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return UNKNOWN
        i = step.end()
    return value


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def predict_outputs(files: Mapping[str, bytes], variables: Mapping[str, Any]) -> dict[str, Any]:
    """Output name -> predicted value (or UNKNOWN) of a rendered Terraform stage.

    Sensitive outputs are left out: they are never recorded, so never compared.
    """
    docs: list[Mapping[str, Any]] = []
    for name, data in sorted(files.items()):
        if not name.endswith(".tf.json"):
            continue
        try:
            doc = json.loads(data)
        except ValueError:
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    evaluator = _Evaluator(docs, variables)
    out: dict[str, Any] = {}
    for doc in docs:
        outputs = doc.get("output")
        if not isinstance(outputs, dict):
            continue
        for name, block in outputs.items():
            if isinstance(block, dict) and not block.get("sensitive"):
                out[name] = evaluator.value(block.get("value"))
    return out


def predict_outputs_in(stage_dir: Path, variables: Mapping[str, Any]) -> dict[str, Any]:
    """`predict_outputs` of the `*.tf.json` files of a stage directory as they are on disk."""
    files = {}
    for path in sorted(stage_dir.glob("*.tf.json")):
        try:
            files[path.name] = path.read_bytes()
        except OSError:
            continue
    return predict_outputs(files, variables)


def merge_known(planned: Mapping[str, Any], predicted: Mapping[str, Any]) -> dict[str, Any]:
    """Terraform's planned values, with what the render alone tells filled in.

    A plan marks a `terraform_data` twin's output unknown when its input changes, though
    the twin's output is its input: where the plan does not know and the render does, the
    render's value is right.
    """
    names = set(planned) | set(predicted)
    out: dict[str, Any] = {}
    for name in sorted(names):
        value = planned.get(name, UNKNOWN)
        out[name] = value if is_known(value) else predicted.get(name, UNKNOWN)
    return out
