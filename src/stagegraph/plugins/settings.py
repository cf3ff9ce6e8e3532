"""Plugin config sections: `stagegraph.plugins.settings.<name>`, each checked by its own model.

The main config model accepts any mapping under `stagegraph.plugins.settings` (it cannot
know the models of plugins installed later); each plugin's model validates its own part,
and the errors read like the main config's, with the full dotted path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from stagegraph.plugins.errors import PluginSettingsError
from stagegraph.plugins.hookspecs import ConfigSection

if TYPE_CHECKING:
    from stagegraph.stage import RenderContext

M = TypeVar("M", bound=BaseModel)

#: The config path a stage declares in `config_sections` to read plugin settings.
SETTINGS_PATH = "stagegraph.plugins.settings"

#: The config file name used in errors raised during a render (set by the manager, which
#: knows the project; a render context does not carry the file name).
_CONFIG_FILE: ContextVar[str] = ContextVar("stagegraph_plugin_config_file", default="nebari-config.yaml")
_MARK = "\x00"


@contextmanager
def config_file_named(name: str) -> Iterator[None]:
    token = _CONFIG_FILE.set(name)
    try:
        yield
    finally:
        _CONFIG_FILE.reset(token)


def section_path(section: ConfigSection[Any]) -> str:
    return f"{SETTINGS_PATH}.{section.name}"


def validate_section(section: ConfigSection[M], raw: Any, file: str | None = None) -> M:
    """The section's data checked by its model; a missing section means all defaults."""
    file = file or _CONFIG_FILE.get()
    try:
        return section.model.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        raise PluginSettingsError(file, _problems(exc, section, file)) from None


def _problems(exc: ValidationError, section: ConfigSection[Any], file: str) -> list[str]:
    # Reuse the main config's formatter (did-you-mean, redaction of secret-looking values)
    # with the plugin's model as root, then put the file and the full path in front.
    from stagegraph.schema.problems import format_problems

    prefix = section_path(section)
    lines = []
    for line in format_problems(exc, _MARK, section.model):
        rest = line.removeprefix(f"{_MARK}: ")
        if rest.startswith("(top level): "):
            rest = f"{prefix}: {rest.removeprefix('(top level): ')}"
        else:
            rest = f"{prefix}.{rest}"
        lines.append(f"{file}: {rest}")
    return lines


def read_settings(ctx: RenderContext, section: ConfigSection[M]) -> M:
    """A render's view of its plugin's settings (declare SETTINGS_PATH in config_sections)."""
    everything: Mapping[str, Any] = ctx.config.stagegraph.plugins.settings
    return validate_section(section, everything.get(section.name))
