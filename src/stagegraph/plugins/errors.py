"""What can go wrong with plugins, as one-line errors that name the plugin and the fix."""

from __future__ import annotations

from collections.abc import Sequence

from stagegraph.errors import ConfigError, StagegraphError


class PluginError(StagegraphError):
    """A plugin could not be found, imported or registered, or broke a hook's contract."""


class PluginNotFoundError(PluginError):
    """The config enables a plugin that is neither installed nor imported."""


class HookError(PluginError):
    """A plugin implements a hook that does not exist or takes arguments the hook lacks."""


class PluginConflictError(PluginError):
    """Two plugins provide the same stage, task or config section."""


class PluginSettingsError(ConfigError):
    """A plugin's config section fails the plugin's own model.

    A ConfigError, so it reads and is reported exactly like an error of the main config:
    `<file>: stagegraph.plugins.settings.<name>.<key>: <message> (got <value>)`.
    """

    def __init__(self, file: str, problems: Sequence[str]) -> None:
        super().__init__(file, problems)
