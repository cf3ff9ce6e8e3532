"""Every built-in doit command, registered in one list, through the plugins' own hook.

A command is a function `(session) -> task dict(s)` in one module of this package; adding
one means writing that function and naming it in `BUILTIN_COMMANDS`. The built-in plugin
hands them to doit through `stagegraph_tasks`, the hook a plugin's commands come through
(`stagegraph.plugins.builtin`), so built-in and plugin commands are made the same way and
a plugin command that takes a built-in name is refused the same way.

The order of the list is the order of `doit list` (after the stages, which come first).
Creating the task dicts runs for every doit command, `doit list` included: keep it cheap,
do the work in the actions (`stagegraph.actions`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stagegraph.tasks import Session

TaskDict = dict[str, Any]
CommandFn = Callable[["Session"], "TaskDict | Iterable[TaskDict]"]


def builtin_commands() -> tuple[CommandFn, ...]:
    """The one registration list of the built-in commands, in `doit list` order."""
    from stagegraph.commands import engine, lifecycle, secrets, tools, views

    return (
        engine.stages,
        engine.lock,
        views.validate,
        views.check,
        engine.render,
        engine.deploy,
        engine.plan,
        engine.apply_plan,
        engine.destroy,
        engine.destroy_orphans,
        views.status,
        views.why,
        engine.forget_state,
        lifecycle.move_state,
        views.graph,
        tools.init,
        tools.schema,
        tools.provider_schemas,
        tools.cloud_catalog,
        tools.bump,
        tools.verify_pins,
        *secrets.commands(),
        tools.bench,
        lifecycle.upgrade,
        lifecycle.restore,
        lifecycle.snapshots,
        lifecycle.migrations,
        lifecycle.backup,
        views.plugins,
    )


def builtin_tasks(session: Session) -> Iterator[TaskDict]:
    """The task dicts of every built-in command; a group's doc defaults to its docstring."""
    for command in builtin_commands():
        produced = command(session)
        for item in [produced] if isinstance(produced, dict) else list(produced):
            if "doc" not in item and item.get("name") is None and command.__doc__:
                item = {**item, "doc": command.__doc__.strip().splitlines()[0]}
            yield item
