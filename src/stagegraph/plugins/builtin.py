"""The built-in stages, registered through the same hook as every plugin."""

from __future__ import annotations

from collections.abc import Iterable

from stagegraph.plugins.hookspecs import hookimpl
from stagegraph.stage import Stage

#: The name the built-in plugin is registered under; it is always active.
NAME = "stagegraph"


@hookimpl
def stagegraph_stages() -> Iterable[Stage]:
    from stagegraph.stages.builtin import BUILTIN_STAGES

    return BUILTIN_STAGES
