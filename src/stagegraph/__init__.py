"""stagegraph: a Nebari-compatible data platform deployed as an incremental graph of Terraform stages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stagegraph.plugins.hookspecs import hookimpl as hookimpl

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `from stagegraph import hookimpl` for plugin authors, without importing pluggy for
    # every user of the package.
    if name == "hookimpl":
        from stagegraph.plugins.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'stagegraph' has no attribute {name!r}")
