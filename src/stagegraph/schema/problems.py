"""Turn a pydantic `ValidationError` into problem lines users can act on.

Each line reads `<file>: <dotted.path>: <message> (got <value>)`:
- union tags (see `base.TAG_MARK`) are dropped from the path;
- an unknown key gets "did you mean" from the keys its section allows;
- a model-level check (`base.field_problem`) is reported at the field it blames;
- a value inside a secret field, or under an unknown key that looks like a credential, is
  shown as `<redacted>`, and mappings are summarised by their keys, never their values.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from stagegraph.schema.base import FIELD_PROBLEM, TAG_MARK
from stagegraph.schema.ingress import CERTIFICATE_TYPE_ERROR, CERTIFICATE_TYPES
from stagegraph.schema.introspect import model_at
from stagegraph.schema.secret import SECRET_TAGS, SECRET_TYPE_ERROR, SecretRef, is_secret_annotation
from stagegraph.schema.security import AUTHENTICATION_TYPE_ERROR, AUTHENTICATION_TYPES

REDACTED = "<redacted>"
_NOTHING: Any = object()
_MAX_SHOWN = 60
#: Unknown keys whose names look like credentials never have their values shown.
_SECRET_LOOKING = re.compile(r"pass|secret|token|credential|private|api_?key", re.IGNORECASE)
_TYPED_UNIONS = {
    CERTIFICATE_TYPE_ERROR: CERTIFICATE_TYPES,
    AUTHENTICATION_TYPE_ERROR: AUTHENTICATION_TYPES,
}


def format_problems(error: ValidationError, filename: str, root: type[BaseModel]) -> list[str]:
    """One line per distinct problem, in the order pydantic found them."""
    lines: list[str] = []
    for detail in error.errors(include_url=False):
        line = format_problem(detail, filename, root)
        if line not in lines:
            lines.append(line)
    return lines


def format_problem(detail: ErrorDetails, filename: str, root: type[BaseModel]) -> str:
    loc: list[int | str] = list(detail["loc"])
    kind = detail["type"]
    message = _plain_message(detail["msg"])
    value: Any = detail.get("input", _NOTHING)
    context: dict[str, Any] = dict(detail.get("ctx") or {})
    secret = kind == SECRET_TYPE_ERROR or any(part in SECRET_TAGS for part in loc if isinstance(part, str))

    if kind == FIELD_PROBLEM:
        loc += context["field"].split(".")
        value = context.get("value", _NOTHING)
    elif kind in _TYPED_UNIONS:
        allowed = ", ".join(_TYPED_UNIONS[kind])
        if isinstance(value, dict):
            loc.append("type")
            value = value.get("type", _NOTHING)
            message = f"should be one of {allowed}"
        else:
            message = f"should be a mapping with a type key, one of {allowed}"
    elif kind == "extra_forbidden":
        message, looks_secret = _unknown_key(root, loc)
        if secret:
            # Inside a secret field even the key may be the secret (`password: {hunter2}`
            # is a mapping in YAML): name the field, not the key.
            loc = loc[:-1]
            message = message.replace("unknown key", "unknown key (name hidden, it may be the secret)", 1)
        secret = secret or looks_secret
    elif kind == "missing":
        message = "required key is missing"
        value = _NOTHING

    shown = REDACTED if secret and value is not _NOTHING else describe(value)
    return f"{filename}: {dotted(loc) or '(top level)'}: {message} (got {shown})"


def dotted(loc: Sequence[int | str]) -> str:
    """The path users see: union tags dropped, list indices as numbers."""
    return ".".join(str(part) for part in loc if not (isinstance(part, str) and part.startswith(TAG_MARK)))


def describe(value: Any) -> str:
    """A short, secret-free rendering of an input value."""
    if value is _NOTHING:
        return "nothing"
    if isinstance(value, (SecretStr, SecretRef)):
        return REDACTED
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # Cut after repr so escapes cannot make it long again; keep the closing quote.
        text = repr(value)
        return text if len(text) <= _MAX_SHOWN else f"{text[: _MAX_SHOWN - 4]}...{text[0]}"
    if isinstance(value, dict):
        # Keys only: values may hold credentials.
        keys = [str(key) for key in value][:5]
        more = ", ..." if len(value) > 5 else ""
        return f"a mapping with keys {', '.join(keys)}{more}" if keys else "an empty mapping"
    if isinstance(value, BaseModel):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    return f"a value of type {type(value).__name__}"


def _plain_message(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _unknown_key(root: type[BaseModel], loc: Sequence[int | str]) -> tuple[str, bool]:
    """The message for an unknown key, and whether its value must be hidden."""
    key = str(loc[-1])
    model = model_at(root, loc[:-1])
    if model is None:
        return "unknown key", bool(_SECRET_LOOKING.search(key))
    allowed = {(field.alias or name): field for name, field in model.model_fields.items()}
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    looks_secret = bool(_SECRET_LOOKING.search(key))
    if close:
        looks_secret = looks_secret or is_secret_annotation(allowed[close[0]].annotation)
        return f"unknown key; did you mean '{close[0]}'?", looks_secret
    return f"unknown key; allowed keys: {', '.join(allowed)}", looks_secret
