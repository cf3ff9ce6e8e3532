"""Find, load and activate plugins: one pluggy PluginManager per process.

Where plugins come from:
- the built-in plugin (`stagegraph.plugins.builtin`), always registered and active;
- installed packages, through the `stagegraph` entry-point group: found by reading package
  metadata (cheap), imported only when the config enables them;
- `stagegraph.plugins.import` in the config: modules or `.py` files (relative to the
  config file), imported and active because the config names them;
- `STAGEGRAPH_IMPORT_PLUGIN` or doit's `import_plugin=` (comma-separated, like Nebari's
  `--import-plugin`): imported for this command, but active only when `enabled` names
  them too.

So the config alone decides which plugins take part: the same config deploys the same
stages on every machine (or fails with a message naming the missing plugin), and
installing a package never changes a deploy by itself.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from stagegraph.plugins import builtin, hookspecs
from stagegraph.plugins.errors import HookError, PluginConflictError, PluginError, PluginNotFoundError
from stagegraph.stage import Stage

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

BUILTIN = builtin.NAME
IMPORT_ENV = "STAGEGRAPH_IMPORT_PLUGIN"
HOOKS: tuple[str, ...] = tuple(
    sorted(n for n, f in vars(hookspecs).items() if n.startswith("stagegraph_") and callable(f))
)


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin: its name, where it came from, its version."""

    name: str
    origin: str
    version: str
    plugin: object


class Registry:
    """The process's PluginManager and what was loaded into it, by plugin name."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.loaded: dict[str, PluginInfo] = {}
        self._imports: dict[str, str] = {}  # resolved import spec -> plugin name
        self._entry_points: dict[str, list[EntryPoint]] | None = None
        self.command_line_imports: list[str] = []
        from stagegraph import __version__

        self.register(PluginInfo(BUILTIN, "built-in", __version__, builtin))

    # --- registration -------------------------------------------------------------------

    def register(self, info: PluginInfo) -> PluginInfo:
        """Register a plugin object under its name; any hook problem is an error naming it."""
        current = self.loaded.get(info.name)
        if current is not None:
            if current.plugin is info.plugin:
                return current
            raise PluginConflictError(
                f"two plugins are named {info.name!r}: {current.origin} and {info.origin}; "
                "rename one of them (a .py file is named after its stem, a module by its dotted name)"
            )
        for other in self.loaded.values():
            if other.plugin is info.plugin:
                raise PluginConflictError(
                    f"plugin {info.name!r} ({info.origin}) is the same module as plugin {other.name!r} "
                    f"({other.origin}); load it one way only"
                )
        _check_hook_functions(info)
        try:
            self.pm.register(info.plugin, name=info.name)
        except pluggy.PluginValidationError as exc:
            self._drop(info.name)
            raise HookError(_signature_problem(info, self.pm) or _one_line(info, str(exc))) from None
        try:
            # Without this, pluggy silently ignores a hook name no spec declares.
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            message = _unknown_hook_problem(info, self.pm) or _one_line(info, str(exc))
            self._drop(info.name)
            raise HookError(message) from None
        if not self.pm.get_hookcallers(info.plugin):
            self._drop(info.name)
            raise HookError(
                f"plugin {info.name!r} ({info.origin}) implements no hook; decorate its functions "
                f"with @hookimpl (from stagegraph.plugins.hookspecs); hooks: {', '.join(HOOKS)}"
            )
        self.loaded[info.name] = info
        return info

    def _drop(self, name: str) -> None:
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)

    # --- entry points ---------------------------------------------------------------------

    def entry_points(self) -> dict[str, list[EntryPoint]]:
        """Installed plugins by name (reads package metadata; imports nothing)."""
        if self._entry_points is None:
            from importlib.metadata import entry_points

            found: dict[str, list[EntryPoint]] = {}
            for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP):
                found.setdefault(ep.name, []).append(ep)
            self._entry_points = found
        return self._entry_points

    def load_entry_point(self, name: str, where: str) -> PluginInfo:
        if name in self.loaded:
            return self.loaded[name]
        candidates = self.entry_points().get(name, [])
        if not candidates:
            known = sorted({*self.entry_points(), *(n for n in self.loaded if n != BUILTIN)})
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PluginNotFoundError(
                f"{where}: plugin {name!r} is not installed; {hint}found: {', '.join(known) or 'none'}; "
                f"pip install it, add its module or .py file to stagegraph.plugins.import, or remove it"
            )
        distinct = {(ep.value, _dist_name(ep)) for ep in candidates}
        if len(distinct) > 1:
            providers = ", ".join(f"{value} (from {dist})" for value, dist in sorted(distinct))
            raise PluginConflictError(
                f"{where}: plugin name {name!r} is registered by more than one installed package: "
                f"{providers}; uninstall one of them"
            )
        ep = candidates[0]
        origin = f"entry point {ep.value} (package {_dist_name(ep)})"
        try:
            plugin = ep.load()
        except Exception as exc:  # the plugin's own code failed to import
            raise PluginError(
                f"plugin {name!r} ({origin}) failed to import: {_exc_line(exc)}; "
                "reinstall or fix it, or remove it from stagegraph.plugins.enabled"
            ) from exc
        version = ep.dist.version if ep.dist is not None else "unknown"
        return self.register(PluginInfo(name, origin, version, plugin))

    # --- imports --------------------------------------------------------------------------

    def import_spec(self, spec: str, base: Path, where: str) -> PluginInfo:
        """Import a module name or a .py path as a plugin (once per process)."""
        is_path = spec.endswith(".py") or "/" in spec or os.sep in spec
        key = str((base / spec).resolve()) if is_path else spec
        if key in self._imports:
            return self.loaded[self._imports[key]]
        if is_path:
            name, module = Path(key).stem, _import_path(Path(key), spec, where)
        else:
            name, module = spec, _import_module(spec, where)
        version = str(getattr(module, "__version__", ""))
        info = self.register(PluginInfo(name, f"import {spec}", version, module))
        self._imports[key] = name
        return info


def _dist_name(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "unknown package"


def _exc_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import_path(path: Path, spec: str, where: str) -> Any:
    if not path.is_file():
        raise PluginNotFoundError(
            f"{where}: plugin file {spec!r} not found (looked for {path}); "
            "fix the path (relative to the config file's folder) or remove it"
        )
    import hashlib
    import importlib.util
    import re

    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"_stagegraph_plugin_{stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise PluginError(f"{where}: {spec!r} cannot be imported as a Python file; name a .py file")
    module = importlib.util.module_from_spec(module_spec)
    # In sys.modules before it runs, like any import: dataclasses, pydantic and the render
    # code digest (stagegraph.render) look modules up there.
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise PluginError(f"{where}: importing plugin {spec!r} failed: {_exc_line(exc)}") from exc
    return module


def _import_module(spec: str, where: str) -> Any:
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and (spec == exc.name or spec.startswith(exc.name + ".")):
            raise PluginNotFoundError(
                f"{where}: no module named {spec!r}; install it, or give the path of a .py file"
            ) from None
        raise PluginError(f"{where}: importing plugin {spec!r} failed: {_exc_line(exc)}") from exc
    except Exception as exc:
        raise PluginError(f"{where}: importing plugin {spec!r} failed: {_exc_line(exc)}") from exc


# --- hook checks ------------------------------------------------------------------------------


def _check_hook_functions(info: PluginInfo) -> None:
    """A `stagegraph_*` function without @hookimpl would be ignored by pluggy: refuse it."""
    marker = f"{hookspecs.PROJECT}_impl"
    for attr in dir(info.plugin):
        if not attr.startswith("stagegraph_"):
            continue
        value = getattr(info.plugin, attr, None)
        if inspect.isroutine(value) and not hasattr(value, marker):
            raise HookError(
                f"plugin {info.name!r} ({info.origin}): function {attr} is not decorated with @hookimpl; "
                "add `@hookimpl` (from stagegraph.plugins.hookspecs) above it"
            )


def _unknown_hook_problem(info: PluginInfo, pm: pluggy.PluginManager) -> str | None:
    unknown = sorted(
        name
        for name, caller in vars(pm.hook).items()
        if not name.startswith("_")
        and not caller.has_spec()
        and any(impl.plugin_name == info.name for impl in caller.get_hookimpls())
    )
    if not unknown:
        return None
    name = unknown[0]
    close = difflib.get_close_matches(name, HOOKS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"plugin {info.name!r} ({info.origin}) implements unknown hook {name!r}; {hint}"
        f"hooks: {', '.join(HOOKS)}"
    )


def _signature_problem(info: PluginInfo, pm: pluggy.PluginManager) -> str | None:
    marker = f"{hookspecs.PROJECT}_impl"
    for attr in dir(info.plugin):
        value = getattr(info.plugin, attr, None)
        opts = getattr(value, marker, None)
        if opts is None or not callable(value):
            continue
        hook = opts.get("specname") or attr
        if hook not in HOOKS:
            continue
        wanted = list(inspect.signature(getattr(hookspecs, hook)).parameters)
        given = list(inspect.signature(value).parameters)
        extra = [a for a in given if a not in wanted]
        if extra:
            return (
                f"plugin {info.name!r} ({info.origin}): hook {hook}({', '.join(given)}) takes "
                f"{', '.join(extra)}, which the hook does not pass; write {hook}({', '.join(wanted)})"
            )
    return None


def _one_line(info: PluginInfo, message: str) -> str:
    return f"plugin {info.name!r} ({info.origin}): {' '.join(message.split())}"


# --- the one registry, and activation ---------------------------------------------------------


@cache
def registry() -> Registry:
    return Registry()


def plugin_manager() -> pluggy.PluginManager:
    """The process's PluginManager (built-in plugin registered, hook specs added)."""
    return registry().pm


def reset() -> None:
    """Forget every loaded plugin (tests; a new process starts fresh anyway)."""
    registry.cache_clear()


def set_command_line_imports(specs: Sequence[str]) -> None:
    """doit's `import_plugin=`: plugins imported for this command (active only if enabled)."""
    registry().command_line_imports = [s for s in specs if s]


def config_plugins(raw: Mapping[str, object]) -> tuple[list[str], list[str]]:
    """`enabled` and `import` from the raw config (bad shapes are left to validation)."""
    tool = raw.get("stagegraph")
    section = tool.get("plugins") if isinstance(tool, Mapping) else None
    if not isinstance(section, Mapping):
        return [], []

    def strings(key: str) -> list[str]:
        value = section.get(key)
        return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []

    return strings("enabled"), strings("import")


def split_imports(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def activate(
    raw: Mapping[str, object],
    *,
    base: Path,
    config_name: str = "nebari-config.yaml",
    env: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """Load what the config asks for and return the active plugin names, built-in first."""
    env = os.environ if env is None else env
    reg = registry()
    enabled, imports = config_plugins(raw)
    active = [BUILTIN]
    for spec in imports:
        info = reg.import_spec(spec, base, f"{config_name}: stagegraph.plugins.import")
        active.append(info.name)
    for spec in split_imports(env.get(IMPORT_ENV)):
        reg.import_spec(spec, Path.cwd(), IMPORT_ENV)
    for spec in reg.command_line_imports:
        reg.import_spec(spec, Path.cwd(), "import_plugin=")
    for name in enabled:
        if name not in reg.loaded:
            reg.load_entry_point(name, f"{config_name}: stagegraph.plugins.enabled")
        active.append(name)
    return tuple(dict.fromkeys(active))


def stages_for(
    raw_config: Mapping[str, object],
    base: Path | None = None,
    config_name: str = "nebari-config.yaml",
) -> list[Stage]:
    """Stages for a config given as raw YAML data (validation happens later, in actions)."""
    from stagegraph.plugins.collect import collect_stages

    active = activate(raw_config, base=base or Path.cwd(), config_name=config_name)
    return collect_stages(active, config_name)
