"""The built-in stages and commands, registered through the same hooks as every plugin's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stagegraph.plugins.hookspecs import hookimpl
from stagegraph.stage import Stage

if TYPE_CHECKING:
    from stagegraph.plugins.tasks import TaskContext

#: The name the built-in plugin is registered under; it is always active.
NAME = "stagegraph"


@hookimpl
def stagegraph_stages() -> Iterable[Stage]:
    from stagegraph.stages.builtin import BUILTIN_STAGES

    return BUILTIN_STAGES


@hookimpl
def stagegraph_tasks(context: TaskContext) -> Iterable[dict[str, Any]]:
    """The built-in commands (`stagegraph.commands`); they need the doit session."""
    if context.session is None:
        return ()
    from stagegraph.commands import builtin_tasks

    return list(builtin_tasks(context.session))
