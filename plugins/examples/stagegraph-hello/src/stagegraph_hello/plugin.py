"""The hook implementations of stagegraph-hello: its stage, its task and its config section.

Registered under the `stagegraph` entry-point group as `hello` (see pyproject.toml); it
takes part in a deploy only when the config names it in `stagegraph.plugins.enabled`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from stagegraph.plugins.hookspecs import ConfigSection, hookimpl
from stagegraph.plugins.tasks import TaskContext
from stagegraph.stage import Stage
from stagegraph_hello.stage import NAME, SECTION, STAGE, HelloSettings, message


@hookimpl
def stagegraph_stages() -> Iterable[Stage]:
    return [STAGE]


@hookimpl
def stagegraph_config_section() -> ConfigSection[HelloSettings]:
    return SECTION


@hookimpl
def stagegraph_tasks(context: TaskContext) -> Iterator[dict[str, Any]]:
    def hello(to: str) -> None:
        settings = context.settings(SECTION)
        record = context.project.records.get(NAME)
        if to:
            print(message(settings.greeting, to, context.project.config.domain or "localhost"))
        elif record is not None and record.status == "applied":
            print(record.outputs["message"])
        else:
            print(
                f"{settings.greeting}, {settings.audience}! ({NAME} is not deployed yet: run `doit deploy`)"
            )

    yield {
        "basename": "hello",
        "doc": f"Print the greeting of the {NAME} stage (--to NAME greets someone else)",
        "actions": [hello],
        "params": [{"name": "to", "long": "to", "default": "", "help": "who to greet instead"}],
    }
