"""The doit tasks: one task per stage plus the commands around them.

Task creators run for every doit command, `doit list` included, so they only parse the
config and build the graph (no Terraform, no Kubernetes client, no SOPS). Every action
turns a `StagegraphError` into a one-line failure; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

from stagegraph.errors import StagegraphError
from stagegraph.graph import StageGraph, build_graph
from stagegraph.project import Project
from stagegraph.stage import Stage

TaskDict = dict[str, Any]


def __getattr__(name: str) -> Any:
    # The params live with their commands; these names stay importable from here.
    if name in ("DEPLOY_PARAMS", "DESTROY_PARAMS"):
        from stagegraph.commands import engine

        return getattr(engine, name)
    if name == "INIT_PARAMS":
        from stagegraph.commands import tools

        return tools.INIT_PARAMS
    raise AttributeError(name)


class Session:
    """Per-process state shared by the task creators and actions."""

    def __init__(
        self,
        root: Path,
        argv: Sequence[str],
        config: str | None,
        extra_stages: Sequence[Stage] = (),
        environment: str | None = None,
    ) -> None:
        self.root = root
        self.argv = list(argv)
        self.load_error: StagegraphError | None = None
        try:
            self.project = Project.discover(root, config, environment=environment)
            self.project.state_dir  # noqa: B018 - a bad environment name fails here, once
        except StagegraphError as exc:
            # An unusable config name or env=: every action reports it; `doit list` works.
            self.load_error = exc
            self.project = Project.discover(root, None)
        self.project.extra_stages = tuple(extra_stages)
        try:
            if self.load_error is not None:
                raise self.load_error
            self.project.check_identity(record=False, raw=True, allowed=self.allowed_changes())
            self.graph: StageGraph = self.project.graph
        except StagegraphError as exc:
            # Keep `doit list` and `doit help` usable with a broken config: show the
            # built-in stages, and let every action report the error.
            from stagegraph.stages.builtin import BUILTIN_STAGES

            self.load_error = exc
            self.graph = build_graph(BUILTIN_STAGES)
        self._runtime: Any = None
        # doit's threads (render tasks beside the preflight) ask for the runtime at once:
        # two runtimes would split the run summary, and the one written could be empty.
        self._runtime_lock = threading.Lock()
        #: Values the command modules compute once per process (the run's options).
        self.cache: dict[str, Any] = {}

    def runtime(self) -> Any:
        if self.load_error is not None:
            raise self.load_error
        with self._runtime_lock:
            if self._runtime is None:
                from stagegraph.deploy import Runtime
                from stagegraph.summary import RunSummary

                command = self.command_name()
                summary = RunSummary(command)
                self._runtime = Runtime(self.project, self._console(summary), summary)
                atexit.register(self._write_summary)
        return self._runtime

    def check_config(self) -> None:
        """Raise the config's error, if it has one (graph, YAML, or validation)."""
        if self.load_error is not None:
            raise self.load_error
        self.project.config  # noqa: B018 - validates, raising a ConfigError

    def _console(self, summary: Any) -> Any:
        """The live view on an interactive terminal, plain prefixed lines elsewhere."""
        from stagegraph.console import Console
        from stagegraph.liveview import live_wanted

        if not live_wanted(sys.stdout):
            return Console(stage_names=self.graph.names)
        from stagegraph.commands.engine import options
        from stagegraph.liveview import LiveConsole

        return LiveConsole(self.graph, summary, run_stages=options(self).stages)

    def command_name(self) -> str:
        """The task the user asked for (`deploy`, `destroy`, a stage name, ...), for records."""
        known = {"deploy", "destroy", "destroy_orphans", "plan", "apply_plan", "render", "move_state"}
        known |= set(self.graph.names)
        for token in self.argv[1:]:
            if token.split(":")[0] in known:
                return token.split(":")[0]
        return "deploy"

    def _write_summary(self) -> None:
        """At exit: save the run's summary and end the output with its one line.

        At exit rather than in a last task, so a failed run gets its line too (doit skips
        the tasks after a failure).
        """
        if self._runtime is None:
            return
        self._runtime.console.close()
        if not self._runtime.summary.stages:
            return
        summary = self._runtime.summary
        if not summary.ok:
            done = {r.stage for r in summary.stages}
            summary.mark_not_run([n for n in self.graph.names if n not in done])
        summary.write(self.project.state_dir)
        from stagegraph.signals import interrupted

        if interrupted():
            return  # stopped by a signal: its one `interrupted (...)` line is the last word
        try:
            print(summary.one_line(), flush=True)
            for note in summary.notes:
                print(f"note: {note}", flush=True)
        except BrokenPipeError:
            from stagegraph.brokenpipe import stdout_gone

            stdout_gone()

    def allowed_changes(self) -> frozenset[str]:
        """The immutable fields this command line lets change (`deploy --allow-change FIELD`)."""
        from stagegraph.cliargs import task_options
        from stagegraph.commands.engine import DEPLOY_PARAMS

        return frozenset(task_options(self.argv, "deploy", DEPLOY_PARAMS)["allow_change"])

    def doit_db(self) -> Path:
        """doit's database: in this deployment's own `.stagegraph/`, so that two
        environments (or folders) run at the same time without sharing one file."""
        project = self.project
        # A refused config (another deployment's folder, a bad env=) gets a scratch database.
        if self.load_error is None and (project.config_path.exists() or project.home.is_dir()):
            project.state_dir.mkdir(parents=True, exist_ok=True)
            return project.state_dir / "doit-db.json"
        # No deployment here yet (`doit env=typo list`) or not ours: create or touch nothing.
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="stagegraph-doit-")
        atexit.register(scratch.cleanup)
        return Path(scratch.name) / "doit-db.json"

    def hold_lock(self, command: str) -> None:
        """Take this deployment's lock for the run, then make sure the folder is this config's."""
        from stagegraph.projectlock import hold_for_process

        if self.load_error is not None:
            raise self.load_error
        hold_for_process(self.project.state_dir, command)
        if command == "render":
            # Writes this machine's files only: no state read, so no lock in the shared store and
            # no cloud credentials (a render before the first deploy needs none). A config that
            # points elsewhere than the state is refused all the same, from what is recorded here.
            from stagegraph.statelocation import check_location as refuse_elsewhere

            refuse_elsewhere(self.project, ask_store=False)
            self.project.check_identity(record=True, allowed=self.allowed_changes())
            return
        check_location = command != "move_state" and not self.cache.get("state_location_checked")
        if check_location:
            from stagegraph.statelocation import check_location as refuse_elsewhere

            refuse_elsewhere(self.project)  # once a run: it may read the shared store
        store = self.project.shared_store
        if store is not None:
            from stagegraph.sharedstate import Lease, hold_shared_lock

            state = self.project.config.terraform_state
            hold_shared_lock(store, command, Lease(state.lock_lease_s, state.lock_wait_s))
            from stagegraph.sharedstate.bootstrap import made_by_state_stage, settle

            # forget_state is how a refused 01 state (another lineage) is set aside: not refused itself.
            settling = command != "forget_state" and not self.cache.get("settled")
            if made_by_state_stage(self.project.config) and settling:
                settle(self.project, store)  # records a run left here go in; 01's state level
                self.cache["settled"] = True
        self.project.check_identity(record=True, allowed=self.allowed_changes())
        if check_location:
            from stagegraph.statelocation import record_location

            record_location(self.project)
            self.cache["state_location_checked"] = True


def failing_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report a StagegraphError as one line (doit's TaskFailed), without a traceback."""

    @wraps(fn)
    def action(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except StagegraphError as exc:
            return TaskFailed(str(exc))
        return None if result is None else result

    return action


def printing(fn: Callable[..., str], loaded: bool = False) -> Callable[..., Any]:
    """An action that prints what `fn(session, **params)` returns, failing cleanly.

    `loaded`: the command needs a valid config (upgrade must run on an old one).
    """

    @wraps(fn)
    def action(s: Session, *args: Any, **kwargs: Any) -> None:
        if loaded and s.load_error is not None:
            raise s.load_error
        print(fn(s, *args, **kwargs))

    return failing_cleanly(action)


def make_task_creators(session: Session) -> dict[str, Callable[[], Any]]:
    """The `task_*` functions for dodo.py: one creator yielding every task.

    One creator, so `doit list --sort=definition` shows the stages first, in runtime order,
    then the commands in their registration order (`stagegraph.commands`), then the
    commands of enabled plugins. Built-in and plugin commands both come through the
    `stagegraph_tasks` hook.
    """

    def task_stagegraph() -> Iterator[TaskDict]:
        from stagegraph.plugins.manager import BUILTIN
        from stagegraph.plugins.tasks import builtin_tasks

        taken: list[str] = []
        for item in builtin_tasks(session.project, session.graph, session):
            if item.get("name") is None and item["basename"] not in taken:
                taken.append(item["basename"])
            yield item
        yield from _plugin_tasks(session, [t for t in taken if t not in session.graph and t != BUILTIN])

    return {"task_stagegraph": task_stagegraph}


# --- actions ----------------------------------------------------------------------------------


def session_from_doit(root: Path, extra_stages: Sequence[Stage] = ()) -> Session:
    from doit import get_var

    from stagegraph import signals
    from stagegraph.brokenpipe import die_quietly_on_broken_pipe
    from stagegraph.plugins.manager import set_command_line_imports, split_imports

    signals.install()
    die_quietly_on_broken_pipe(sys.argv)
    set_command_line_imports(split_imports(get_var("import_plugin", None)))
    return Session(root, sys.argv, get_var("config", None), extra_stages, environment=get_var("env", None))


def dodo_namespace(root: Path, extra_stages: Sequence[Stage] = ()) -> dict[str, Any]:
    """Everything a dodo.py hands doit: its settings (DOIT_CONFIG) and the task creator.

    `root` is the folder of dodo.py; the config (default nebari-config.yaml there, or
    `config=`, `env=`) decides the deployment folder, and doit's database lives in it.
    """
    from stagegraph.doitconfig import DOIT_CONFIG
    from stagegraph.doitdb import DOIT_DB, recover_doit_db

    session = session_from_doit(root, extra_stages)
    db = session.doit_db()
    if db == session.project.home / DOIT_DB:
        # Before doit opens its database (it does so after loading dodo.py).
        moved = recover_doit_db(session.project.home)
        if moved:
            print(f"warning: {moved}", file=sys.stderr)
    return {
        "DOIT_CONFIG": {**DOIT_CONFIG, "dep_file": str(db)},
        **make_task_creators(session),
    }


# --- plugins ----------------------------------------------------------------------------------


def _plugin_tasks(s: Session, taken: list[str]) -> list[TaskDict]:
    from stagegraph.plugins.manager import registry

    if s.load_error is not None or len(registry().loaded) == 1:
        return []  # a broken config, or no plugin besides the built-in one (tasks.py's own)
    from stagegraph.plugins.tasks import plugin_tasks

    try:
        return plugin_tasks(s.project, s.graph, taken, failing_cleanly)
    except StagegraphError as exc:
        s.load_error = exc  # every action reports it; `doit list` stays usable
        return []
