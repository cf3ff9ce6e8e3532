"""The hooks a plugin implements: stages, tasks (subcommands) and a config section.

A plugin is a module with functions decorated with `hookimpl` and named after these specs
(pluggy matches by name; a misspelled name is an error, see `stagegraph.plugins.manager`).
Each hook returns records (a `Stage`, a doit task dict, a `ConfigSection`); the built-in
stages come through the same `stagegraph_stages` hook (`stagegraph.plugins.builtin`).

Every docstring below ends with a complete plugin module that runs as it is; the tests
import each one, register it and call its hook.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy
from pydantic import BaseModel

if TYPE_CHECKING:
    from stagegraph.plugins.custom import CustomStage
    from stagegraph.plugins.tasks import TaskContext
    from stagegraph.stage import Stage

PROJECT = "stagegraph"
#: The entry-point group installed plugins register under (see docs/plugins.md).
ENTRY_POINT_GROUP = "stagegraph"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ConfigSection(Generic[M]):
    """A plugin's own config section, at `stagegraph.plugins.settings.<name>`.

    The section is validated by `model` alone (never merged into the main config model);
    `model` must forbid unknown keys so a typo is an error, as everywhere in the config.
    """

    name: str
    model: type[M]
    description: str = ""


@hookspec
def stagegraph_stages() -> Iterable[Stage | type[CustomStage]]:
    """Stages this plugin adds, inserts or replaces.

    Return (or yield) `stagegraph.stage.Stage` records for Terraform stages, or subclasses
    of `stagegraph.plugins.custom.CustomStage` for stages that bring their own deploy,
    check and destroy steps (Nebari's interface). Where a stage lands:

    - `depends_on` orders it after the stages whose outputs it reads; a stage runs after
      everything it depends on, whatever its priority;
    - `priority` breaks ties between stages ready at the same time (the built-ins use 10,
      20, ... 110 in Nebari's numbering), so priority 45 plus a dependency on
      04-kubernetes-ingress lands between the ingress and Keycloak (50);
    - a stage with the name of an existing one and a higher priority replaces it; its
      consumers read its outputs by type, so produce the same output model.

    The plugin's stages take part only when `stagegraph.plugins.enabled` names the plugin.

    Example (a complete plugin module)::

        from stagegraph.plugins.hookspecs import hookimpl
        from stagegraph.stage import RenderContext, Rendered, Stage
        from stagegraph.tfjson import TerraformModule


        def render(ctx: RenderContext) -> Rendered:
            m = TerraformModule(sandbox=ctx.sandbox, comment="045-hello: written by a plugin")
            m.resource("terraform_data", "hello", {"input": "hello"})
            m.output("said", "hello", "What the stage said.")
            return {"main.tf.json": m.document()}


        @hookimpl
        def stagegraph_stages():
            yield Stage(
                name="045-hello",
                description="Says hello between the ingress and Keycloak",
                render=render,
                depends_on=("04-kubernetes-ingress",),
                priority=45,
            )
    """
    return ()


@hookspec
def stagegraph_tasks(context: TaskContext) -> Iterable[dict[str, Any]]:
    """doit tasks (subcommands) this plugin adds: `doit <basename>`.

    Yield doit task dicts; each needs a `basename` that no stage or other task uses.
    Python actions that raise a `StagegraphError` fail with its one-line message, like
    the built-in commands. `context` gives the project (config, lockfile, records), the
    stage graph, and `context.settings(section)` for the plugin's validated config
    section. Creating the dicts must stay cheap (it happens for every doit command, `doit
    list` included): do the work in the actions.

    Example (a complete plugin module)::

        from stagegraph.plugins.hookspecs import hookimpl


        @hookimpl
        def stagegraph_tasks(context):
            def hello() -> None:
                stages = len(context.graph.stages)
                print(f"hello from {context.project.config_name} ({stages} stages)")

            yield {"basename": "hello", "doc": "Say hello", "actions": [hello]}
    """
    return ()


@hookspec
def stagegraph_config_section() -> ConfigSection[Any] | None:
    """This plugin's config section: `stagegraph.plugins.settings.<name>` in the config.

    The main config accepts any mapping there; `doit validate` (and every deploy) checks
    it against `model` and reports problems like any config error, e.g.
    `nebari-config.yaml: stagegraph.plugins.settings.hello.greting: unknown key; did you
    mean 'greeting'? (got 'hi')`. A render reads it with
    `stagegraph.plugins.settings.read_settings(ctx, SECTION)` after declaring
    `stagegraph.plugins.settings.SETTINGS_PATH` in its `config_sections` (so a change
    re-renders the stage); a task reads it with `context.settings(SECTION)`.

    Example (a complete plugin module)::

        from pydantic import BaseModel, ConfigDict, Field

        from stagegraph.plugins.hookspecs import ConfigSection, hookimpl


        class HelloSettings(BaseModel):
            model_config = ConfigDict(extra="forbid", frozen=True)

            greeting: str = Field("Hello", description="What the stage says.")


        SECTION = ConfigSection(name="hello", model=HelloSettings)


        @hookimpl
        def stagegraph_config_section():
            return SECTION
    """
    return None
