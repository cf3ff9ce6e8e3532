"""Read-only views that let a stage read only what it declared.

Incremental rendering trusts each stage's declarations: if a render could read a config
section it did not declare, a change to that section would leave the stage stale with
nothing to show for it. These views make such a read fail loudly the first time the stage
renders (and the Hypothesis property in the tests exercises every stage).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from stagegraph.errors import UndeclaredInputError
from stagegraph.lockfile import ChartPin, ImagePin, Lockfile, Pin, ProviderPin, VersionPin

#: A tree of allowed attribute names; `True` means "this whole subtree".
AllowTree = dict[str, "AllowTree | bool"]


def allow_tree(paths: Iterable[str]) -> AllowTree:
    tree: AllowTree = {}
    for path in paths:
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is True:
                break
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        else:
            node[parts[-1]] = True
    return tree


class SliceView:
    """Attribute access into a pydantic model, limited to an `AllowTree`."""

    __slots__ = ("_allowed", "_model", "_prefix", "_stage")

    def __init__(self, model: BaseModel, allowed: AllowTree, stage: str, prefix: str = "") -> None:
        self._model = model
        self._allowed = allowed
        self._stage = stage
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        rule = self._allowed.get(name)
        path = f"{self._prefix}{name}"
        if rule is None:
            raise UndeclaredInputError(
                f"stage {self._stage!r} read config section {path!r} without declaring it; "
                f"add {path!r} to its config_sections"
            )
        value = getattr(self._model, name)
        if not isinstance(rule, dict) or not isinstance(value, BaseModel):
            return value
        return SliceView(value, rule, self._stage, f"{path}.")

    def __repr__(self) -> str:
        return f"SliceView({type(self._model).__name__}, stage={self._stage!r})"


def slice_values(model: BaseModel, paths: Iterable[str]) -> dict[str, Any]:
    """The JSON value of each declared path: what a stage's render can see, for digests."""
    out: dict[str, Any] = {}
    for path in sorted(set(paths)):
        node: Any = model
        for part in path.split("."):
            node = getattr(node, part, None) if node is not None else None
        out[path] = node.model_dump(mode="json") if isinstance(node, BaseModel) else jsonable(node)
    return out


def jsonable(value: Any) -> Any:
    """Plain JSON data for a config value; secrets become '<secret>', never their text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "get_secret_value"):
        # A plaintext secret is never part of a digest input in the clear; the engine
        # digests secrets separately (keyed) so a change still re-applies the stage.
        return "<secret>"
    return value


class PinView:
    """The pins a stage declared, typed by group."""

    __slots__ = ("_allowed", "_file", "_lock", "_stage")

    def __init__(self, lock: Lockfile, allowed: Iterable[str], stage: str, file: str) -> None:
        self._lock = lock
        self._allowed = frozenset(allowed)
        self._stage = stage
        self._file = file

    def _get(self, key: str) -> Pin:
        if key not in self._allowed:
            raise UndeclaredInputError(
                f"stage {self._stage!r} used pin {key!r} without declaring it; add {key!r} to its pins"
            )
        return self._lock.pin(key, file=self._file, user=f"stage {self._stage}")

    def chart(self, name: str) -> ChartPin:
        pin = self._get(f"helm_charts.{name}")
        assert isinstance(pin, ChartPin)
        return pin

    def image(self, name: str) -> ImagePin:
        pin = self._get(f"images.{name}")
        assert isinstance(pin, ImagePin)
        return pin

    def provider(self, name: str) -> ProviderPin:
        pin = self._get(f"providers.{name}")
        assert isinstance(pin, ProviderPin)
        return pin

    def version(self, key: str) -> str:
        pin = self._get(key)
        assert isinstance(pin, VersionPin)
        return pin.version

    def kind_node_image(self) -> ImagePin:
        pin = self._get("kubernetes.kind_node_image")
        assert isinstance(pin, ImagePin)
        return pin
