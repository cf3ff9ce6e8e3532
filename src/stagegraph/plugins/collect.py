"""Call the hooks of the active plugins and check what they return.

Hooks are called plugin by plugin (built-in first, then in the config's order) rather than
through pluggy's all-at-once call, so every record keeps the name of the plugin that gave
it: a clash or a cycle can then name every provider, and a broken plugin is named too.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from stagegraph.errors import StagegraphError
from stagegraph.plugins.errors import PluginConflictError, PluginError
from stagegraph.plugins.hookspecs import ConfigSection
from stagegraph.plugins.manager import BUILTIN, registry
from stagegraph.plugins.settings import config_file_named
from stagegraph.stage import RenderContext, Rendered, Stage


def call_hook(
    hook: str, active: Sequence[str], kwargs_for: Callable[[str], dict[str, Any]] | None = None
) -> list[tuple[str, Any]]:
    """(plugin, result) for each active plugin implementing `hook`, in `active` order.

    Iterable results are materialised here, so an error raised while a generator runs is
    reported as the plugin's, like one raised by the call.
    """
    impls = {impl.plugin_name: impl for impl in getattr(registry().pm.hook, hook).get_hookimpls()}
    out: list[tuple[str, Any]] = []
    for plugin in active:
        impl = impls.get(plugin)
        if impl is None:
            continue
        kwargs = kwargs_for(plugin) if kwargs_for else {}
        try:
            result = impl.function(*(kwargs[name] for name in impl.argnames))
            if result is not None and not isinstance(result, (ConfigSection, dict)) and _iterable(result):
                result = list(result)
        except StagegraphError:
            raise
        except Exception as exc:  # the plugin's code: name it rather than crash doit
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise PluginError(
                f"plugin {plugin!r}: hook {hook} raised {type(exc).__name__}"
                f"{': ' + text if text else ''}; fix the plugin or remove it from stagegraph.plugins.enabled"
            ) from exc
        out.append((plugin, result))
    return out


def _iterable(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes))


# --- stages -----------------------------------------------------------------------------------


def stages_of(plugin: str, result: Any, config_name: str) -> list[Stage]:
    """A plugin's `stagegraph_stages` result as Stage records, each marked with its source."""
    if result is None:
        return []
    if not isinstance(result, list):
        raise PluginError(
            f"plugin {plugin!r}: stagegraph_stages returned a {type(result).__name__}; "
            "return or yield Stage records and CustomStage subclasses"
        )
    stages = []
    for item in result:
        if isinstance(item, Stage):
            stage = item if plugin == BUILTIN else _from_plugin(item, plugin, config_name)
        elif isinstance(item, type) and _is_custom(item):
            from stagegraph.plugins.custom import as_stage

            if not isinstance(getattr(item, "name", None), str):
                raise PluginError(f"plugin {plugin!r}: custom stage class {item.__name__} has no name")
            stage = as_stage(item, plugin)
        else:
            raise PluginError(
                f"plugin {plugin!r}: stagegraph_stages gave a {type(item).__name__}; "
                "give Stage records or CustomStage subclasses (the class, not an instance)"
            )
        stages.append(stage)
    return stages


def _is_custom(cls: type) -> bool:
    # Imported on first use: `doit list` without custom stages need not pay for it.
    from stagegraph.plugins.custom import CustomStage

    return issubclass(cls, CustomStage)


def _from_plugin(stage: Stage, plugin: str, config_name: str) -> Stage:
    render = stage.render

    # Settings errors raised by the render name the project's config file.
    @functools.wraps(render)
    def named_render(ctx: RenderContext) -> Rendered:
        with config_file_named(config_name):
            return render(ctx)

    return replace(stage, source=plugin, render=named_render)


def collect_stages(active: Sequence[str], config_name: str) -> list[Stage]:
    """Every stage of the active plugins, with the clashes only plugins can cause refused."""
    stages: list[Stage] = []
    for plugin, result in call_hook("stagegraph_stages", active):
        stages.extend(stages_of(plugin, result, config_name))
    check_providers(stages)
    check_dependencies(stages)
    return stages


def _provider(stage: Stage) -> str:
    who = "built-in" if stage.source == BUILTIN else f"plugin {stage.source}"
    return f"{who} (priority {stage.priority})"


def check_providers(stages: Sequence[Stage]) -> None:
    """One plugin per stage name; a replacement must outrank the built-in it replaces."""
    by_name: dict[str, list[Stage]] = {}
    for stage in stages:
        by_name.setdefault(stage.name, []).append(stage)
    for name, group in by_name.items():
        if len(group) == 1:
            continue
        group = sorted(group, key=lambda s: (-s.priority, s.source))
        providers = ", ".join(_provider(s) for s in group)
        plugins = [s for s in group if s.source != BUILTIN]
        if len(plugins) > 1:
            names = ", ".join(sorted({s.source for s in plugins}))
            raise PluginConflictError(
                f"stage {name!r} is provided by more than one plugin: {providers}; "
                f"enable only one of {names} (stagegraph.plugins.enabled)"
            )
        base = next(s for s in group if s.source == BUILTIN)
        plugin = plugins[0]
        if plugin.priority <= base.priority:
            raise PluginConflictError(
                f"stage {name!r} is provided by {providers}: plugin {plugin.source} replaces the "
                f"built-in stage only with a higher priority; give it a priority above {base.priority}"
            )


def check_dependencies(stages: Sequence[Stage]) -> None:
    """A plugin stage that needs an unknown stage: name the plugin and the closest name."""
    names = {s.name for s in stages}
    for stage in stages:
        if stage.source == BUILTIN:
            continue
        for dep in stage.depends_on:
            if dep in names:
                continue
            close = difflib.get_close_matches(dep, sorted(names), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PluginError(
                f"stage {stage.name!r} (plugin {stage.source}) depends on unknown stage {dep!r}; "
                f"{hint}known stages: {', '.join(sorted(names))}"
            )


# --- config sections ---------------------------------------------------------------------------


def collect_sections(active: Sequence[str]) -> dict[str, tuple[str, ConfigSection[Any]]]:
    """Section name -> (plugin, section), for the active plugins that declare one."""
    sections: dict[str, tuple[str, ConfigSection[Any]]] = {}
    for plugin, result in call_hook("stagegraph_config_section", active):
        if result is None:
            continue
        if not isinstance(result, ConfigSection):
            raise PluginError(
                f"plugin {plugin!r}: stagegraph_config_section returned a {type(result).__name__}; "
                "return a ConfigSection(name, model) or None"
            )
        if not result.name or "." in result.name:
            raise PluginError(
                f"plugin {plugin!r}: config section name {result.name!r} must be non-empty, without dots"
            )
        if result.model.model_config.get("extra") != "forbid":
            raise PluginError(
                f"plugin {plugin!r}: config section model {result.model.__name__} must forbid unknown "
                "keys, so a typo is an error: set model_config = ConfigDict(extra='forbid')"
            )
        if result.name in sections:
            raise PluginConflictError(
                f"config section stagegraph.plugins.settings.{result.name} is declared by plugins "
                f"{sections[result.name][0]} and {plugin}; enable only one of them"
            )
        sections[result.name] = (plugin, result)
    return sections
