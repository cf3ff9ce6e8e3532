"""One deployment project: where its config, lockfile, renders and records are.

Everything is loaded lazily and once per process, so creating doit tasks (which happens for
every command, `doit list` included) costs a config parse and nothing heavier.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from stagegraph.configfile import load_config, resolve_config_path
from stagegraph.graph import StageGraph, build_graph
from stagegraph.lockfile import DEFAULT_LOCKFILE, Lockfile, load_lockfile
from stagegraph.stage import Stage

if TYPE_CHECKING:
    from stagegraph.records import RecordStore
    from stagegraph.schema.config import NebariConfig

STATE_DIR = ".stagegraph"
LOCKFILE_ENV = "STAGEGRAPH_LOCKFILE"


@dataclass
class Project:
    root: Path
    config_path: Path
    lockfile_path: Path
    extra_stages: tuple[Stage, ...] = field(default_factory=tuple)

    @classmethod
    def discover(
        cls,
        root: Path,
        config: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Project:
        env = os.environ if env is None else env
        config_path = resolve_config_path(config, env, root)
        lockfile = Path(env.get(LOCKFILE_ENV) or root / DEFAULT_LOCKFILE)
        return cls(root=root, config_path=config_path, lockfile_path=lockfile)

    @property
    def config_name(self) -> str:
        """The config path as users typed it: relative to the root when inside it."""
        try:
            return str(self.config_path.relative_to(self.root))
        except ValueError:
            return str(self.config_path)

    @property
    def lockfile_name(self) -> str:
        try:
            return str(self.lockfile_path.relative_to(self.root))
        except ValueError:
            return str(self.lockfile_path)

    @cached_property
    def config(self) -> NebariConfig:
        return load_config(self.config_path, display_name=self.config_name)

    @cached_property
    def lock(self) -> Lockfile:
        return load_lockfile(self.lockfile_path)

    @cached_property
    def raw_config(self) -> dict[str, object]:
        """The config as plain YAML data, unvalidated: enough to pick the stages.

        Building the graph must not cost a full validation, because doit builds it for
        every command (`doit list` included); actions validate before they use anything.
        """
        import yaml

        from stagegraph.configfile import load_yaml_bounded

        try:
            # Bounded like the validating read: an alias bomb must not hang `doit list`.
            data = load_yaml_bounded(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return {}  # the actions' validation reports the real problem
        return data if isinstance(data, dict) else {}

    @cached_property
    def graph(self) -> StageGraph:
        from stagegraph.plugins.manager import stages_for

        plugin_stages = stages_for(
            self.raw_config, base=self.config_path.parent, config_name=self.config_name
        )
        return build_graph([*plugin_stages, *self.extra_stages])

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def output_root(self) -> Path:
        from stagegraph.confine import OutsideError, is_within

        out = self.root / self.config.stagegraph.output_directory
        if not is_within(out, self.root):
            # The config's value is checked by its model; a committed symlink is not.
            raise OutsideError(
                f"{out}: stagegraph.output_directory leads outside the deployment folder "
                f"{self.root} through a symlink; make it a plain folder"
            )
        return out

    def stage_dir(self, stage: Stage) -> Path:
        return self.output_root / stage.directory(self.config.provider)

    @cached_property
    def records(self) -> RecordStore:
        from stagegraph.records import RecordStore

        return RecordStore(self.state_dir)
