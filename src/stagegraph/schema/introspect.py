"""Walk the config models by their annotations (tagged unions, lists and dicts included).

Used to find the model at an error's location (for "did you mean"), to pick a tagged
union's member, and by tests that check every field of every model.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

#: Stands for any mapping key or list index in the paths `walk_fields` yields.
ANY = "*"


def model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that validates the value at `loc` (tags included), if any."""
    annotation: Any = root
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    annotation = strip_annotation(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def strip_annotation(annotation: Any) -> Any:
    """Drop Annotated metadata and an Optional's None, keeping real unions."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def union_member(annotation: Any, union_tag: str) -> Any:
    """The member of a tagged union (see `base.tag`) whose tag is `union_tag`, or None."""
    for member in typing.get_args(strip_annotation(annotation)):
        metadata = getattr(member, "__metadata__", ())
        if any(getattr(item, "tag", None) == union_tag for item in metadata):
            return member
    return None


def _step(annotation: Any, part: int | str) -> Any:
    annotation = strip_annotation(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if (origin is Union or origin is types.UnionType) and isinstance(part, str):
        return union_member(annotation, part)
    if origin is list and isinstance(part, int):
        return args[0]
    if origin is dict and isinstance(part, str):
        return args[1]
    return None


def walk_fields(
    root: type[BaseModel], prefix: str = ""
) -> Iterator[tuple[str, type[BaseModel], str, FieldInfo]]:
    """Every field reachable from `root`: (path, model, field name, field info).

    Paths use keys as written in YAML (aliases) and `*` for any mapping key or list index,
    e.g. `security.authentication.config.client_secret`, `profiles.jupyterlab.*.users`.
    """
    for name, field in root.model_fields.items():
        path = f"{prefix}{field.alias or name}"
        yield path, root, name, field
        for model, model_path in _models_in(field.annotation, path):
            yield from walk_fields(model, f"{model_path}.")


def _models_in(annotation: Any, path: str) -> Iterator[tuple[type[BaseModel], str]]:
    annotation = strip_annotation(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, path
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Union or origin is types.UnionType:
        for member in args:
            yield from _models_in(member, path)
    elif origin is list and args:
        yield from _models_in(args[0], f"{path}.{ANY}")
    elif origin is dict and len(args) == 2:
        yield from _models_in(args[1], f"{path}.{ANY}")
