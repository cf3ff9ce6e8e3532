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

from stagegraph import actions
from stagegraph.cliargs import task_options
from stagegraph.errors import StagegraphError
from stagegraph.graph import StageGraph, build_graph
from stagegraph.project import Project
from stagegraph.stage import Stage

TaskDict = dict[str, Any]

DEPLOY_PARAMS: list[dict[str, Any]] = [
    {
        "name": "stop_at",
        "long": "stop-at",
        "default": "",
        "type": str,
        "help": "deploy every stage up to and including this one, in runtime order",
    },
    {
        "name": "disable_render",
        "long": "disable-render",
        "default": False,
        "type": bool,
        "help": "apply the rendered files on disk as they are (shows whether they differ from a fresh render)",
    },
    {
        "name": "allow_change",
        "long": "allow-change",
        "default": [],
        "type": list,
        "help": "let this immutable field (project_name, provider, storage.type, ...) change; repeatable",
    },
]
INIT_PARAMS: list[dict[str, Any]] = [
    {
        "name": "provider",
        "long": "provider",
        "default": "sandbox",
        "help": "sandbox, local, existing, aws, gcp or azure",
    },
    {"name": "project_name", "long": "project-name", "default": "demo", "help": "project name"},
    {"name": "domain", "long": "domain", "default": "demo.example.com", "help": "domain of the platform"},
    {"name": "auth", "long": "auth", "default": "password", "help": "password, GitHub, Auth0 or custom"},
    {"name": "gcp_project", "long": "gcp-project", "default": "", "help": "GCP project id (provider gcp)"},
]
DESTROY_PARAMS: list[dict[str, Any]] = [
    {
        "name": "keep",
        "long": "keep",
        "default": [],
        "type": list,
        "help": "keep this stage (and what it needs); repeatable",
    },
]


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
            self.project.check_identity(record=False, raw=True)
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

    def runtime(self) -> Any:
        if self.load_error is not None:
            raise self.load_error
        with self._runtime_lock:
            if self._runtime is None:
                from stagegraph.console import Console
                from stagegraph.deploy import Runtime
                from stagegraph.summary import RunSummary

                command = self.command_name()
                summary = RunSummary(command)
                self._runtime = Runtime(self.project, Console(stage_names=self.graph.names), summary)
                atexit.register(self._write_summary)
        return self._runtime

    def command_name(self) -> str:
        """The task the user asked for (`deploy`, `destroy`, a stage name, ...), for records."""
        known = {"deploy", "destroy", "destroy_orphans", "plan", "apply_plan", "render", *self.graph.names}
        for token in self.argv[1:]:
            if token.split(":")[0] in known:
                return token.split(":")[0]
        return "deploy"

    def _write_summary(self) -> None:
        if self._runtime is None or not self._runtime.summary.stages:
            return
        summary = self._runtime.summary
        if not summary.ok:
            done = {r.stage for r in summary.stages}
            summary.mark_not_run([n for n in self.graph.names if n not in done])
        summary.write(self.project.state_dir)

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
        self.project.check_identity(record=True)


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
    """The `task_*` functions for dodo.py. Order of definition is `doit list` order."""
    s = session
    graph = s.graph
    deploy_opts = task_options(s.argv, "deploy", DEPLOY_PARAMS)
    destroy_opts = task_options(s.argv, "destroy", DESTROY_PARAMS)
    disable_render = bool(deploy_opts["disable_render"])
    run_stages = _stages_of_this_run(s, graph, deploy_opts["stop_at"])

    def task_stages() -> Iterator[TaskDict]:
        for stage in graph.stages:
            deps = ["_lock", *stage.depends_on]
            if not disable_render:
                deps.append(f"render:{stage.name}")
            steps: list[Any] = []
            if disable_render:
                steps.append((failing_cleanly(actions.do_report_disk_render), [s, stage.name]))
            steps.append((failing_cleanly(actions.do_apply), [s, stage.name]))
            yield {
                "basename": stage.name,
                "doc": stage.description,
                "actions": steps,
                "task_dep": deps,
                "uptodate": [_stage_uptodate(s, stage.name)],
                "verbosity": 2,
            }

    def task__lock() -> TaskDict:
        # Every stage task depends on this one: take the project lock once per run, then
        # check everything that can be checked before anything applies.
        return {"actions": [(failing_cleanly(actions.do_preflight), [s, run_stages])], "verbosity": 2}

    def task_validate() -> TaskDict:
        """Validate the config and the lockfile pins every stage uses (offline)."""
        return {"actions": [(failing_cleanly(actions.do_validate), [s])], "verbosity": 2}

    def task_check() -> TaskDict:
        """Check the render against the real Kubernetes API, chart and provider schemas (offline)."""
        from stagegraph.checks.options import CHECK_PARAMS

        return {"actions": [(failing_cleanly(actions.do_check), [s])], "params": CHECK_PARAMS, "verbosity": 2}

    def task_render() -> Iterator[TaskDict]:
        """Render every stage to Terraform JSON in the output directory."""
        yield {"name": None, "doc": "Render every stage (only changed ones are rewritten)"}
        # The CI workflow of ci_cd (nothing when its type is none); written files only.
        yield {"name": "ci_cd", "actions": [(failing_cleanly(actions.do_render_ci), [s])], "verbosity": 2}
        for stage in graph.stages:
            yield {
                "name": stage.name,
                "actions": [(failing_cleanly(actions.do_render), [s, stage.name])],
                "uptodate": [_render_uptodate(s, stage.name)],
                "verbosity": 2,
            }

    def task_deploy() -> TaskDict:
        """Apply the stages whose inputs changed (--stop-at STAGE, --disable-render)."""
        stop_at = deploy_opts["stop_at"]
        names = graph.up_to(stop_at) if stop_at and stop_at in graph else graph.names
        return {
            "actions": [(failing_cleanly(actions.do_deploy_done), [s, stop_at])],
            "task_dep": [*names, *([] if disable_render else ["render:ci_cd"])],
            "params": DEPLOY_PARAMS,
            "verbosity": 2,
        }

    def task_plan() -> Iterator[TaskDict]:
        """terraform plan per stage, against declared mock outputs where upstream is not applied."""
        yield {"name": None, "doc": "Plan every stage; saved plans are applied with `doit apply_plan`"}
        for stage in graph.stages:
            yield {
                "name": stage.name,
                "actions": [(failing_cleanly(actions.do_plan), [s, stage.name])],
                "task_dep": ["_lock", f"render:{stage.name}"],
                "verbosity": 2,
            }

    def task_apply_plan() -> Iterator[TaskDict]:
        """Apply saved plans in order; plans made against mocks or stale inputs are refused."""
        yield {"name": None, "doc": "Apply the saved plans"}
        for stage in graph.stages:
            yield {
                "name": stage.name,
                "actions": [(failing_cleanly(actions.do_apply_plan), [s, stage.name])],
                "task_dep": ["_lock", *(f"apply_plan:{d}" for d in stage.depends_on)],
                "verbosity": 2,
            }

    def task_destroy() -> Iterator[TaskDict]:
        """Destroy in reverse dependency order, stop at the first failure (--keep STAGE)."""
        keep = set(graph.ancestors(destroy_opts["keep"])) if destroy_opts["keep"] else set()
        # A whole `doit destroy` also destroys the stages that left the graph, first: they
        # may need what the stages still in it provide (the cluster).
        orphans_first = ["destroy_orphans"] if "destroy" in s.argv[1:] else []
        yield {"name": None, "doc": "Destroy every stage not kept", "params": DESTROY_PARAMS}
        for stage in graph.stages:
            if stage.name in keep:
                continue
            yield {
                "name": stage.name,
                "actions": [(failing_cleanly(actions.do_destroy), [s, stage.name])],
                "task_dep": [
                    "_lock",
                    *orphans_first,
                    *(f"destroy:{d}" for d in graph.dependents(stage.name) if d not in keep),
                ],
                "uptodate": [_destroyed_uptodate(s, stage.name)],
                "verbosity": 2,
            }

    def task_destroy_orphans() -> TaskDict:
        """Destroy stages that left the graph (plugin disabled or uninstalled) from their recorded render and state."""
        return {
            "actions": [(failing_cleanly(actions.do_destroy_orphans), [s])],
            "params": [
                {
                    "name": "stage",
                    "long": "stage",
                    "default": [],
                    "type": list,
                    "help": "destroy only this orphan (repeatable; default: every one `doit status` lists)",
                }
            ],
            "verbosity": 2,
        }

    def task_status() -> TaskDict:
        """Per stage: applied, stale, never applied, failed or destroyed, and when; orphans too (--all: every environment)."""
        return {
            "actions": [(failing_cleanly(actions.do_status), [s])],
            "params": [
                {
                    "name": "all",
                    "long": "all",
                    "type": bool,
                    "default": False,
                    "help": "every environment of the folder side by side (nebari-config.yaml, nebari-config.<env>.yaml)",
                }
            ],
            "verbosity": 2,
        }

    def task_why() -> TaskDict:
        """Name exactly which inputs of a stage changed since its last apply: doit why STAGE."""
        return {"actions": [(failing_cleanly(actions.do_why), [s])], "pos_arg": "stages", "verbosity": 2}

    def task_forget_state() -> TaskDict:
        """Accept that a stage's Terraform state is lost: forget its record: doit forget_state STAGE."""
        return {
            "actions": [(failing_cleanly(actions.do_forget_state), [s])],
            "pos_arg": "stages",
            "verbosity": 2,
        }

    def task_graph() -> TaskDict:
        """Each stage's dependencies, config sections and pins (--svg FILE, --dot FILE)."""
        return {
            "actions": [(failing_cleanly(actions.do_graph), [s])],
            "params": [
                {"name": "svg", "long": "svg", "default": "", "help": "also write the graph as SVG"},
                {"name": "dot", "long": "dot", "default": "", "help": "also write Graphviz DOT"},
            ],
            "verbosity": 2,
        }

    def task_init() -> TaskDict:
        """Write a new, fully commented config (refuses to overwrite an existing file)."""
        return {
            "actions": [(failing_cleanly(actions.do_init), [s])],
            "params": INIT_PARAMS,
            "verbosity": 2,
        }

    def task_schema() -> TaskDict:
        """Regenerate schema/nebari-config.schema.json from the config models."""
        return {"actions": [(failing_cleanly(actions.do_schema), [s])], "verbosity": 2}

    def task_provider_schemas() -> TaskDict:
        """Store the schema of every pinned provider next to the lockfile (maintainers; npm/git)."""
        from stagegraph.tfschema.tasks import PROVIDER_SCHEMAS_PARAMS

        return {
            "actions": [(failing_cleanly(actions.do_provider_schemas), [s])],
            "params": PROVIDER_SCHEMAS_PARAMS,
            "verbosity": 2,
        }

    def task_bump() -> TaskDict:
        """Propose (and with --apply write) this quarter's pin bumps; see docs/pins.md."""
        from stagegraph.pins.tasks import BUMP_PARAMS

        return {"actions": [(failing_cleanly(actions.do_bump), [s])], "params": BUMP_PARAMS, "verbosity": 2}

    def task_verify_pins() -> TaskDict:
        """Check that every pinned chart, image and provider version still exists upstream."""
        from stagegraph.pins.tasks import VERIFY_PARAMS

        return {
            "actions": [(failing_cleanly(actions.do_verify_pins), [s])],
            "params": VERIFY_PARAMS,
            "verbosity": 2,
        }

    def task_bench() -> TaskDict:
        """Print benchmark medians: list, validate, render, deploys, 10/100/500-stage graphs."""
        return {
            "actions": [(actions.do_bench, [s])],
            "params": [
                {
                    "name": "quick",
                    "long": "quick",
                    "type": bool,
                    "default": False,
                    "help": "fewer runs, no 500-stage graph",
                }
            ],
            "verbosity": 2,
        }

    def task_upgrade() -> TaskDict:
        """Bring the config to this release's format (backup, diff; --decide, --confirm, --list)."""
        from stagegraph.upgrade.commands import UPGRADE_PARAMS, upgrade

        return {"actions": [(printing(upgrade), [s])], "params": UPGRADE_PARAMS, "verbosity": 2}

    def task_restore() -> TaskDict:
        """Put a stage's Terraform state and record back to a snapshot: doit restore STAGE."""
        from stagegraph.upgrade.commands import RESTORE_PARAMS, restore

        return {
            "actions": [(printing(restore, loaded=True), [s])],
            "params": RESTORE_PARAMS,
            "pos_arg": "stages",
            "verbosity": 2,
        }

    def task_snapshots() -> TaskDict:
        """List the snapshots taken before each apply, per stage."""
        from stagegraph.upgrade.commands import snapshots

        return {"actions": [(printing(snapshots), [s])], "verbosity": 2}

    def task_backup() -> TaskDict:
        """Back up Keycloak, conda-store and shared storage: a CronJob on the cluster (--now: run one)."""
        from stagegraph.upgrade.commands import BACKUP_PARAMS, backup

        return {
            "actions": [(printing(backup, loaded=True), [s])],
            "params": BACKUP_PARAMS,
            "verbosity": 2,
        }

    def task_migrations() -> TaskDict:
        """Phased major-version migrations: where each version runs, and what to tell users."""
        from stagegraph.upgrade.commands import migrations

        return {"actions": [(printing(migrations, loaded=True), [s])], "verbosity": 2}

    def task_plugins() -> TaskDict:
        """List the plugins found: version, whether enabled, and the stages, tasks and settings each brings."""
        return {"actions": [(failing_cleanly(actions.do_plugins), [s])], "verbosity": 2}

    def plugin_tasks() -> list[TaskDict]:
        # Subcommands of the enabled plugins (their stagegraph_tasks hook), listed last.
        return _plugin_tasks(s, [g.__name__.removeprefix("task_") for g in generators])

    def task_secrets() -> Iterator[TaskDict]:
        # secrets_keygen, secrets_encrypt, ... (docs/secrets.md); each prints what it returns.
        from stagegraph.sops.tasks import COMMANDS

        for command in COMMANDS:
            yield {
                "basename": command.name,
                "doc": command.doc,
                "params": command.params,
                "actions": [(failing_cleanly(actions.do_secrets_command), [s, command.run])],
                "verbosity": 2,
            }

    generators: list[Callable[[], Any]] = [
        task_stages,
        task__lock,
        task_validate,
        task_check,
        task_render,
        task_deploy,
        task_plan,
        task_apply_plan,
        task_destroy,
        task_destroy_orphans,
        task_status,
        task_why,
        task_forget_state,
        task_graph,
        task_init,
        task_schema,
        task_provider_schemas,
        task_bump,
        task_verify_pins,
        task_secrets,
        task_bench,
        task_upgrade,
        task_restore,
        task_snapshots,
        task_migrations,
        task_backup,
        task_plugins,
        plugin_tasks,
    ]

    def task_stagegraph() -> Iterator[TaskDict]:
        # One creator yields every task, so `doit list --sort=definition` shows them in
        # this order: the stages first, in runtime order, then the commands.
        for gen in generators:
            basename = gen.__name__.removeprefix("task_")
            produced = gen()
            items = [produced] if isinstance(produced, dict) else list(produced)
            for item in items:
                if "basename" not in item:
                    item["basename"] = basename
                    if "doc" not in item and item.get("name") is None and gen.__doc__:
                        item["doc"] = gen.__doc__.strip()
                yield item

    return {"task_stagegraph": task_stagegraph}


# --- uptodate callables ---------------------------------------------------------------------


def _stage_uptodate(s: Session, name: str) -> Callable[[], bool]:
    def check() -> bool:
        if s.load_error is not None:
            return False
        from stagegraph.status import is_up_to_date
        from stagegraph.upgrade.deploy_actions import pending

        try:
            # A stage with an upgrade action still to run is never skipped.
            fresh = is_up_to_date(s.project, name) and not pending(s.project.state_dir, name)
        except StagegraphError:
            return False  # the action reports it
        if fresh:
            s.runtime().summary.add(name, "skipped", 0.0, "up to date")
        return fresh

    return check


def _render_uptodate(s: Session, name: str) -> Callable[[], bool]:
    def check() -> bool:
        if s.load_error is not None:
            return False
        from stagegraph.render import RenderedStage, is_current, render_inputs

        try:
            stage = s.graph[name]
            inputs = render_inputs(stage, s.project.config, s.project.lock)
            digest = RenderedStage(name, stage.directory(s.project.config.provider), {}, inputs).digest
            return is_current(s.project.stage_dir(stage), digest)
        except StagegraphError:
            return False  # the action reports it

    return check


def _destroyed_uptodate(s: Session, name: str) -> Callable[[], bool]:
    def check() -> bool:
        from stagegraph.destroy import is_destroyed

        return s.load_error is None and is_destroyed(s.project, name)

    return check


# --- actions ----------------------------------------------------------------------------------


def session_from_doit(root: Path, extra_stages: Sequence[Stage] = ()) -> Session:
    from doit import get_var

    from stagegraph import signals
    from stagegraph.plugins.manager import set_command_line_imports, split_imports

    signals.install()
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


def _stages_of_this_run(s: Session, graph: StageGraph, stop_at: str) -> list[str]:
    """The stages this command line may apply: checked for secrets before any applies."""
    named = [t for t in s.argv[1:] if t in graph]
    if named:
        return graph.ancestors(named)
    if stop_at and stop_at in graph:
        return graph.up_to(stop_at)
    return graph.names
