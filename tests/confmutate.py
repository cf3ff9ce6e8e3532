"""Shared helpers for the Hypothesis tests that change one config value and re-render.

Imported by test_render_properties and test_services_property (and test_services_stage for
the section list); it holds no tests itself.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume
from pydantic import ValidationError

from stagegraph.schema.config import NebariConfig

#: The top-level config sections 07-kubernetes-services owns, as a user edits them
#: (monitoring.healthchecks belongs to 10 and 11; callers skip it). Not
#: `stagegraph.stages.services.SECTIONS`: that is the dotted list the render declares
#: (monitoring.enabled, ..., and nebari_version, which every stage reads).
SERVICE_SECTIONS = (
    "argo_workflows",
    "conda_store",
    "default_images",
    "environments",
    "jhub_apps",
    "jupyterhub",
    "jupyterlab",
    "monitoring",
    "profiles",
    "secrets",
    "storage",
    "telemetry",
    "theme",
)


def is_secret_ref(node: Any) -> bool:
    """A reference to an encrypted secret (`{sops: ..., key: ...}`): never rendered."""
    return isinstance(node, dict) and set(node) == {"sops", "key"}


def mutate(value: Any) -> Any:
    """A different value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    return f"{value}x"


def parent_of(data: Any, path: tuple[str | int, ...]) -> Any:
    """The mapping or list that holds `path`'s last part (list indices as int or digit str)."""
    for part in path[:-1]:
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def set_at(data: Any, path: tuple[str, ...], value: Any) -> None:
    node = parent_of(data, path)
    if isinstance(node, list):
        node[int(path[-1])] = value
    else:
        node[path[-1]] = value


def declares(sections: tuple[str, ...], dotted: str) -> bool:
    """A declared section covers the value, or lies inside it."""
    return any(dotted == s or dotted.startswith(s + ".") or s.startswith(dotted + ".") for s in sections)


def valid_or_skip(data: Any) -> NebariConfig:
    """The config `data` describes; a Hypothesis example that makes it invalid is skipped."""
    try:
        return NebariConfig.model_validate(data)
    except ValidationError:
        assume(False)
        raise
