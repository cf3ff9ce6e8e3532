"""The doit side of plugins: their tasks (subcommands), `doit plugins`, settings checks.

`stagegraph.tasks` calls these; they take the project and graph it already built, so
creating plugin tasks for `doit list` costs only the hook calls of the active plugins.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from stagegraph.plugins.collect import call_hook, collect_sections, stages_of
from stagegraph.plugins.errors import PluginConflictError, PluginError, PluginSettingsError
from stagegraph.plugins.hookspecs import ConfigSection
from stagegraph.plugins.manager import BUILTIN, activate, registry
from stagegraph.plugins.settings import SETTINGS_PATH, validate_section

if TYPE_CHECKING:
    from stagegraph.graph import StageGraph
    from stagegraph.project import Project
    from stagegraph.schema.config import NebariConfig

M = TypeVar("M", bound=BaseModel)
TaskDict = dict[str, Any]


@dataclass(frozen=True)
class TaskContext:
    """What a plugin's `stagegraph_tasks` hook gets: the project, its graph, the plugin."""

    plugin: str
    project: Project
    graph: StageGraph
    #: The doit session, for the built-in commands (`stagegraph.commands`); None for plugins.
    session: Any = None

    def settings(self, section: ConfigSection[M]) -> M:
        """The plugin's validated section (call it in an action: it validates the config)."""
        everything = self.project.config.stagegraph.plugins.settings
        return validate_section(section, everything.get(section.name), self.project.config_name)


def active_plugins(project: Project) -> tuple[str, ...]:
    """The plugins taking part for this project's config (already loaded by its graph)."""
    return activate(project.raw_config, base=project.config_path.parent, config_name=project.config_name)


def plugin_tasks(
    project: Project, graph: StageGraph, taken: Iterable[str], wrap: Callable[[Any], Any]
) -> list[TaskDict]:
    """The task dicts of the active plugins; `wrap` turns a python action into a clean failure."""
    owners: dict[str, str] = {name: "a stage" for name in graph.names}
    owners.update({name: "a built-in task" for name in taken if name not in owners})
    tasks: list[TaskDict] = []
    active = [p for p in active_plugins(project) if p != BUILTIN]  # built-ins: `builtin_tasks`

    def context(plugin: str) -> dict[str, Any]:
        return {"context": TaskContext(plugin, project, graph)}

    for plugin, result in call_hook("stagegraph_tasks", active, context):
        items = [result] if isinstance(result, dict) else list(result or [])
        for item in items:
            tasks.append(_task(plugin, item, owners, wrap))
    return tasks


def builtin_tasks(project: Project, graph: StageGraph, session: Any) -> list[TaskDict]:
    """The built-in commands' task dicts, through the same hook as a plugin's."""
    context = TaskContext(BUILTIN, project, graph, session)
    tasks: list[TaskDict] = []
    for _, result in call_hook("stagegraph_tasks", [BUILTIN], lambda _: {"context": context}):
        tasks.extend([result] if isinstance(result, dict) else list(result or []))
    return tasks


def _task(plugin: str, item: Any, owners: dict[str, str], wrap: Callable[[Any], Any]) -> TaskDict:
    if not isinstance(item, dict) or not isinstance(item.get("basename"), str) or not item["basename"]:
        what = "a task dict without a basename" if isinstance(item, dict) else f"a {type(item).__name__}"
        raise PluginError(
            f"plugin {plugin!r}: stagegraph_tasks gave {what}; "
            "yield doit task dicts with a 'basename' (the subcommand name)"
        )
    basename = item["basename"]
    owner = owners.get(basename)
    if owner is not None and owner != f"plugin {plugin}":
        raise PluginConflictError(
            f"plugin {plugin!r}: task {basename!r} is already {owner}; give the task another basename"
        )
    owners[basename] = f"plugin {plugin}"
    task = dict(item)
    task["actions"] = [_wrap_action(action, wrap) for action in item.get("actions") or []]
    task.setdefault("verbosity", 2)
    if item.get("name") is None:
        task.setdefault("doc", f"(plugin {plugin})")
    return task


def _wrap_action(action: Any, wrap: Callable[[Any], Any]) -> Any:
    if callable(action):
        return wrap(action)
    if isinstance(action, tuple) and action and callable(action[0]):
        return (wrap(action[0]), *action[1:])
    return action  # a shell command: doit reports its exit status


# --- settings ----------------------------------------------------------------------------------


def validate_settings(config: NebariConfig, config_name: str, active: Iterable[str]) -> dict[str, Any]:
    """Check every section under stagegraph.plugins.settings against its plugin's model."""
    from stagegraph.schema.problems import describe

    given: Mapping[str, Any] = config.stagegraph.plugins.settings
    sections = collect_sections(tuple(active))
    problems: list[str] = []
    for key in given:
        if key not in sections:
            close = difflib.get_close_matches(key, sorted(sections), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            known = ", ".join(sorted(sections)) or "none"
            problems.append(
                f"{config_name}: {SETTINGS_PATH}.{key}: no enabled plugin has this section; {hint}"
                f"sections of enabled plugins: {known} (got {describe(given[key])})"
            )
    validated: dict[str, Any] = {}
    for name, (_, section) in sorted(sections.items()):
        try:
            validated[name] = validate_section(section, given.get(name), config_name)
        except PluginSettingsError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PluginSettingsError(config_name, problems)
    return validated


def check_settings(project: Project) -> None:
    """For `doit validate` and every deploy: the plugin sections are valid."""
    validate_settings(project.config, project.config_name, active_plugins(project))


# --- doit plugins ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginRow:
    name: str
    version: str
    origin: str
    enabled: str
    stages: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    section: str = ""
    error: str = ""


def describe_plugins(project: Project, graph: StageGraph) -> list[PluginRow]:
    """Every plugin found (installed, imported, built-in), loaded to say what it brings.

    This is the one place that imports plugins the config does not enable: an action, run
    on request, never at task creation.
    """
    reg = registry()
    try:
        active = set(active_plugins(project))
    except PluginError:
        active = {BUILTIN}  # the error is reported after the list
    rows: dict[str, PluginRow] = {}
    names = [BUILTIN, *sorted(n for n in reg.loaded if n != BUILTIN), *sorted(reg.entry_points())]
    for name in dict.fromkeys(names):
        info = reg.loaded.get(name)
        if info is None:
            try:
                info = reg.load_entry_point(name, "doit plugins")
            except PluginError as exc:
                eps = reg.entry_points().get(name, [])
                version = eps[0].dist.version if eps and eps[0].dist is not None else "?"
                origin = f"entry point {eps[0].value}" if eps else "?"
                rows[name] = PluginRow(name, version, origin, _enabled(name, active), error=str(exc))
                continue
        rows[name] = _row(info.name, info.version, info.origin, _enabled(name, active), project, graph)
    return list(rows.values())


def _enabled(name: str, active: set[str]) -> str:
    if name == BUILTIN:
        return "always"
    return "enabled" if name in active else "not enabled"


def _row(
    name: str, version: str, origin: str, enabled: str, project: Project, graph: StageGraph
) -> PluginRow:
    try:
        from stagegraph.stages.builtin import BUILTIN_STAGES

        builtin_names = {s.name for s in BUILTIN_STAGES}
        stages = []
        for _, result in call_hook("stagegraph_stages", [name]):
            for stage in stages_of(name, result, project.config_name):
                if name == BUILTIN:
                    stages.append(stage.name)
                    continue
                notes = [f"priority {stage.priority}"]
                if stage.name in builtin_names:
                    notes.append("replaces the built-in")
                if stage.depends_on:
                    notes.append(f"needs {', '.join(stage.depends_on)}")
                stages.append(f"{stage.name} ({'; '.join(notes)})")
        tasks: list[str] = []
        for _, result in call_hook(
            "stagegraph_tasks", [name], lambda p: {"context": TaskContext(p, project, graph)}
        ):
            items = [result] if isinstance(result, dict) else list(result or [])
            tasks.extend(dict.fromkeys(str(t.get("basename")) for t in items if isinstance(t, dict)))
        section = ""
        for _, result in call_hook("stagegraph_config_section", [name]):
            if isinstance(result, ConfigSection):
                section = f"{SETTINGS_PATH}.{result.name}"
    except PluginError as exc:
        return PluginRow(name, version, origin, enabled, error=str(exc))
    return PluginRow(name, version, origin, enabled, tuple(stages), tuple(tasks), section)


def format_plugins(rows: Iterable[PluginRow]) -> str:
    """One block per plugin: name, version, where from, enabled, then what it brings."""
    blocks = []
    for row in rows:
        version = row.version or "(no version)"
        lines = [f"{row.name} {version}: {row.enabled} ({row.origin})"]
        if row.stages:
            lines.extend(_wrapped("stages", ", ".join(row.stages)))
        if row.tasks:
            lines.extend(_wrapped("tasks", ", ".join(row.tasks)))
        if row.section:
            lines.append(f"  settings: {row.section}")
        if row.error:
            lines.extend(_wrapped("error", row.error))
        if row.enabled == "not enabled" and not row.error:
            lines.append(f"  (add {row.name!r} to stagegraph.plugins.enabled to use it)")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _wrapped(label: str, text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(
        f"{label}: {text}", width=100, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
    )
