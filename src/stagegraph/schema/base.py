"""The base class of every config section and the small shared types the sections use.

Why these choices:
- `extra="forbid"`: a misspelled key is an error with a "did you mean" hint, never a
  silently ignored setting.
- `frozen=True`: stages render from the config and must not change it; a frozen model
  makes an accidental assignment fail loudly instead of leaking between stages.
- `serialize_by_alias=True`: a dump writes the keys users write (`import`, not `import_`).
- Defaults of nested sections are plain data (`default_factory=dict` with
  `validate_default=True`), validated by the parent's compiled schema. Together with
  `defer_build`, loading a config compiles one validator for the whole tree instead of one
  per class, which roughly halves import + validate time.
- Unions carry a callable discriminator that picks the member from the input's shape, so
  a bad value produces one error instead of one per union member. Tags start with
  `TAG_MARK` so the error formatter can drop them from the dotted path users see.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Tag, WithJsonSchema
from pydantic_core import PydanticCustomError

#: Prefix of every union tag; `stagegraph.configfile` strips such parts from error paths.
#: A control character, so it cannot collide with a key anyone writes in YAML.
TAG_MARK = "\x1f"

#: Error type of a model-level check that blames one field (see `field_problem`).
FIELD_PROBLEM = "field_problem"


def tag(name: str) -> Tag:
    """A union tag the error formatter knows to hide from paths."""
    return Tag(TAG_MARK + name)


class Section(BaseModel):
    """A config section: unknown keys are errors and the parsed config is read-only."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        serialize_by_alias=True,
        # Build validators lazily: the top-level model compiles the whole tree once, instead
        # of every nested class compiling its own validator at import time.
        defer_build=True,
    )


class OpenSection(BaseModel):
    """A section that passes unknown keys through (Kubernetes objects we do not model).

    Used only where the upstream format is open-ended (kubespawner overrides, Dask worker
    options); the keys we know are still typed and described.
    """

    model_config = ConfigDict(extra="allow", frozen=True, serialize_by_alias=True, defer_build=True)


_NOTHING: Any = object()


def field_problem(field: str, message: str, value: Any = _NOTHING) -> PydanticCustomError:
    """An error from a model-level check, reported at `<model path>.<field>`.

    Pydantic reports a model validator's error at the model, with the whole input mapping
    as the value; the formatter uses `field` (a dotted path below the model) and `value`
    from the context instead, so the user sees the key to fix and only its value.
    """
    # Braces would be read as format placeholders by pydantic.
    safe = message.replace("{", "(").replace("}", ")")
    context: dict[str, Any] = {"field": field}
    if value is not _NOTHING:  # left out: the key is missing, shown as "(got nothing)"
        context["value"] = value
    return PydanticCustomError(FIELD_PROBLEM, safe, context)


def _str_or_mapping(value: Any) -> str | None:
    if isinstance(value, str):
        return TAG_MARK + "str"
    if isinstance(value, dict):
        return TAG_MARK + "mapping"
    return None


#: A string or a mapping (CI script steps, conda `pip:` dependency blocks).
StrOrMapping = Annotated[
    Annotated[str, tag("str")] | Annotated[dict[str, Any], tag("mapping")],
    Discriminator(
        _str_or_mapping,
        custom_error_type="str_or_mapping",
        custom_error_message="Input should be a string or a mapping",
    ),
]


def _number_or_str(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return TAG_MARK + "int"
    if isinstance(value, float):
        return TAG_MARK + "float"
    if isinstance(value, str):
        return TAG_MARK + "str"
    return None


#: A Kubernetes quantity written as a number (`2`, `1.5`) or a string (`"500m"`, `"4Gi"`).
NumberOrStr = Annotated[
    Annotated[int, tag("int")] | Annotated[float, tag("float")] | Annotated[str, tag("str")],
    Discriminator(
        _number_or_str,
        custom_error_type="number_or_str",
        custom_error_message="Input should be a number or a string",
    ),
]


def pattern_check(regex: str, message: str) -> AfterValidator:
    """Check a string against `regex`, failing with `message` (use with `pattern_schema`).

    A plain sentence reads better than pydantic's "String should match pattern '^...$'".
    `re.match` compiles on first use and caches, which keeps import time down.
    """

    def check(value: str) -> str:
        if re.match(regex, value) is None:
            raise ValueError(message)
        return value

    return AfterValidator(check)


def pattern_schema(regex: str) -> WithJsonSchema:
    """The JSON Schema of a string checked by `pattern_check`, so editors know the pattern."""
    return WithJsonSchema({"type": "string", "pattern": regex})


QUANTITY_RE = r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|[kmun])?$"
#: A Kubernetes storage quantity such as 200Gi.
Quantity = Annotated[
    str,
    pattern_check(QUANTITY_RE, "should be a Kubernetes quantity such as 200Gi or 1Ti"),
    pattern_schema(QUANTITY_RE),
]


_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOST_LABEL = re.compile(f"^{_LABEL}$")
_HOST_PATTERN = rf"^{_LABEL}(\.{_LABEL})*$"


def _host_name(value: str) -> str:
    labels = value.split(".")
    if len(value) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise PydanticCustomError(
            "host_name",
            "should be a host name such as jupyter.example.com (letters, digits and hyphens, "
            "labels separated by dots)",
        )
    return value


#: A DNS host name (RFC 1123): what a domain field must be for certificates and ingress rules.
HostName = Annotated[
    str,
    AfterValidator(_host_name),
    WithJsonSchema({"type": "string", "pattern": _HOST_PATTERN}),
]

#: `<your GitHub client id>`: what `doit init` writes where only the user knows the value.
PLACEHOLDER = re.compile(r"<your [^<>]*>")


def find_placeholder(node: Any, path: str = "") -> tuple[str, str] | None:
    """The dotted path and value of the first string in raw config data holding a placeholder."""
    if isinstance(node, str):
        return (path, node) if PLACEHOLDER.search(node) else None
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found = find_placeholder(value, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None
