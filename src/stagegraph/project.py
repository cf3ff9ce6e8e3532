"""One deployment project: where its config, lockfile, renders and records are.

`root` is the folder of the config file (not of dodo.py, not the working directory):
secrets, lockfile overrides and plugin paths resolve against it, and everything the
deployment writes goes under its home folder (`stagegraph.deployment`), so two configs
never share a file. Everything is loaded lazily and once per process, so creating doit
tasks (which happens for every command, `doit list` included) costs a config parse and
nothing heavier.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from stagegraph.configfile import load_config, resolve_config_path
from stagegraph.deployment import STATE_DIR, Layout
from stagegraph.graph import StageGraph, build_graph
from stagegraph.lockfile import Lockfile
from stagegraph.lockoverride import base_lockfile, load_with_overrides, override_files
from stagegraph.stage import Stage

if TYPE_CHECKING:
    from stagegraph.records import RecordStore
    from stagegraph.schema.config import NebariConfig
    from stagegraph.sharedstate.store import ConditionalStore

__all__ = ["LOCKFILE_ENV", "STATE_DIR", "Project"]

LOCKFILE_ENV = "STAGEGRAPH_LOCKFILE"


@dataclass
class Project:
    root: Path
    config_path: Path
    lockfile_path: Path
    extra_stages: tuple[Stage, ...] = field(default_factory=tuple)
    #: Where the command was started from (the folder of dodo.py): names in messages are
    #: relative to it when they can be, as users typed them.
    invoked_from: Path | None = None

    @classmethod
    def discover(
        cls,
        root: Path,
        config: str | None = None,
        env: Mapping[str, str] | None = None,
        environment: str | None = None,
    ) -> Project:
        """The project of `config` (or of `environment`, or the default config) seen from `root`.

        `root` (the folder of dodo.py) only anchors a relative config path; the project's
        own root is the config's folder.
        """
        env = os.environ if env is None else env
        config_path = resolve_config_path(config, env, root, environment).resolve()
        folder = config_path.parent
        lockfile = base_lockfile(folder, env, LOCKFILE_ENV)
        return cls(root=folder, config_path=config_path, lockfile_path=lockfile, invoked_from=root.resolve())

    @cached_property
    def layout(self) -> Layout:
        return Layout.of(self.config_path)

    @property
    def environment(self) -> str:
        """ "" for the folder's own nebari-config.yaml, `dev` for nebari-config.dev.yaml."""
        return self.layout.environment

    @property
    def config_name(self) -> str:
        """The config path as users typed it: relative to where they are when inside it."""
        try:
            return str(self.config_path.relative_to(self.invoked_from or self.root))
        except ValueError:
            return str(self.config_path)

    @property
    def lockfile_name(self) -> str:
        return self._relative(self.lockfile_path)

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @cached_property
    def config(self) -> NebariConfig:
        return load_config(self.config_path, display_name=self.config_name)

    @cached_property
    def _lock_and_overrides(self) -> tuple[Lockfile, dict[str, str]]:
        return load_with_overrides(self.lockfile_path, override_files(self.root, self.environment))

    @property
    def lock(self) -> Lockfile:
        return self._lock_and_overrides[0]

    @property
    def overridden_pins(self) -> dict[str, str]:
        """Pin key -> the override file (relative to the folder) that changed it."""
        return {key: self._relative(Path(path)) for key, path in self._lock_and_overrides[1].items()}

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
    def home(self) -> Path:
        """The folder this config writes into: its own folder, or `<env>/` for an environment."""
        return self.layout.home

    @property
    def state_dir(self) -> Path:
        return self.layout.state_dir

    @property
    def output_root(self) -> Path:
        from stagegraph.confine import OutsideError, is_within

        name = self.config.stagegraph.output_directory
        # A rehearsal keeps its own renders and Terraform state, so flipping the flag off
        # never finds a twin's local state where a remote backend is about to be set up.
        # The config's value is checked by its model (stagegraph.schema.tool); a committed
        # symlink is not.
        out = self.layout.output_root(f"{name}-rehearsal" if self.config.stagegraph.rehearse else name)
        if not is_within(out, self.home):
            raise OutsideError(
                f"{out}: stagegraph.output_directory leads outside the deployment folder "
                f"{self.home} through a symlink; make it a plain folder"
            )
        return out

    def check_identity(
        self, *, record: bool, raw: bool = False, allowed: frozenset[str] = frozenset()
    ) -> None:
        """Refuse a config that does not match the deployment recorded in its home folder.

        `raw` compares the unvalidated YAML values: cheap enough for task creation, so even
        a command whose tasks are all up to date never works in another deployment's folder.
        """
        from stagegraph.identity import Identity, check_identity

        if raw:
            name, provider = self.raw_config.get("project_name"), self.raw_config.get("provider")
            if not isinstance(name, str) or not isinstance(provider, str):
                return  # validation reports it
        else:
            name, provider = self.config.project_name, self.config.provider
        wanted = Identity(project_name=name, provider=provider, environment=self.environment)

        def applied() -> list[str]:
            records, _ = self.records.scan()
            return [name for name, rec in records.items() if rec.status != "destroyed"]

        check_identity(self.state_dir, wanted, self.config_name, applied, record=record, allowed=allowed)

    def stage_dir(self, stage: Stage) -> Path:
        return self.output_root / stage.directory(self.config.provider)

    def with_config(self, config: NebariConfig) -> Project:
        """This deployment seen with another config (`doit move_state` reads the state where it was
        last applied): record store, shared lock and stage folders follow that config."""
        other = dataclasses.replace(self)
        other.__dict__["config"] = config  # the cached_property's slot: loaded, never re-read
        return other

    @cached_property
    def shared_store(self) -> ConditionalStore | None:
        """The store of the deployment's shared records and lock; None when they are local."""
        if self.config.stagegraph.rehearse:
            return None  # a rehearsal keeps everything on this machine
        from stagegraph.sharedstate import open_store, shared_location

        where = shared_location(self)
        if where is None:
            return None
        from stagegraph.sharedstate.bootstrap import made_by_state_stage, opened

        store = open_store(where)
        # The bucket a cloud's stage 01 creates: shared once it exists (01's state then comes along).
        return opened(self, store) if made_by_state_stage(self.config) else store

    def look_for_stores_again(self) -> None:
        """Find the shared store and records anew: stage 01 on a cloud just created the store
        (both are otherwise computed once a run)."""
        self.__dict__.pop("shared_store", None)
        self.__dict__.pop("records", None)

    def keep_records_here(self, *, store_gone: bool = False) -> RecordStore:
        """Records on this machine for the rest of the run: stage 01 on a cloud is about to
        delete (`store_gone`: has deleted) the store they were in."""
        from stagegraph.records import RecordStore

        local = RecordStore(self.state_dir)
        self.__dict__["records"] = local
        if store_gone:
            self.__dict__["shared_store"] = None
        return local

    @cached_property
    def records(self) -> RecordStore:
        from stagegraph.records import RecordStore

        store = self.shared_store
        if store is not None:
            from stagegraph.sharedstate import SharedRecordStore

            return SharedRecordStore(store)
        return RecordStore(
            self.state_dir / "rehearsal" if self.config.stagegraph.rehearse else self.state_dir
        )
