"""The commands that work the stage graph: one task per stage, render, deploy, plan,
apply_plan, destroy, and the `_lock` task every run of them starts with.

Which stage tasks a run depends on is decided when the tasks are created, from the
command line (`RunOptions`): `--stop-at`, `--disable-render`, `--keep`, and whether doit
runs serially (`-n 1`), in which case each stage task also waits for the one before it in
runtime order, so the run takes exactly the order `doit list` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from stagegraph import actions
from stagegraph.cliargs import serial_run, task_options
from stagegraph.commands import TaskDict
from stagegraph.doitconfig import DOIT_CONFIG
from stagegraph.errors import StagegraphError
from stagegraph.tasks import failing_cleanly

if TYPE_CHECKING:
    from stagegraph.graph import StageGraph
    from stagegraph.tasks import Session

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
DESTROY_PARAMS: list[dict[str, Any]] = [
    {
        "name": "keep",
        "long": "keep",
        "default": [],
        "type": list,
        "help": "keep this stage (and what it needs); repeatable",
    },
    {
        "name": "delete_data",
        "long": "delete-data",
        "type": bool,
        "default": False,
        "help": "also delete the database volumes Kubernetes keeps after a StatefulSet (kept by default)",
    },
]


@dataclass(frozen=True)
class RunOptions:
    """What the command line says about this run, read once per process."""

    argv: tuple[str, ...]
    graph: StageGraph

    @cached_property
    def deploy(self) -> dict[str, Any]:
        return task_options(self.argv, "deploy", DEPLOY_PARAMS)

    @cached_property
    def destroy(self) -> dict[str, Any]:
        return task_options(self.argv, "destroy", DESTROY_PARAMS)

    @cached_property
    def stages(self) -> list[str]:
        """The stages this command line may apply: checked for secrets before any applies."""
        named = [t for t in self.argv[1:] if t in self.graph]
        stop_at = self.deploy["stop_at"]
        if named:
            return self.graph.ancestors(named)
        if stop_at and stop_at in self.graph:
            return self.graph.up_to(stop_at)
        return self.graph.names

    @cached_property
    def destroying(self) -> list[str]:
        """The stages this destroy command line reaches, in the order it destroys them."""
        keep = self.keep
        order = [n for n in reversed(self.graph.names) if n not in keep]
        if "destroy" in self.argv[1:]:
            return order
        # `doit destroy:X`: X, what depends on it, and in a serial run the stages before it.
        after = previous_in(order) if self.serial else {}
        todo = [t.split(":", 1)[1] for t in self.argv[1:] if t.startswith("destroy:")]
        reached: set[str] = set()
        while todo:
            name = todo.pop()
            if name in reached or name not in order:
                continue
            reached.add(name)
            todo += [*self.graph.dependents(name), *after.get(name, [])]
        return [n for n in order if n in reached]

    @cached_property
    def serial(self) -> bool:
        return serial_run(self.argv, int(DOIT_CONFIG["num_process"]))

    @cached_property
    def before(self) -> dict[str, list[str]]:
        """Serial runs: each stage -> the stage before it in this run (doit's scheduler does
        not keep the order of ready tasks, so the order is made a dependency)."""
        return previous_in(self.stages) if self.serial else {}

    @cached_property
    def keep(self) -> set[str]:
        keep = self.destroy["keep"]
        return set(self.graph.ancestors(keep)) if keep else set()


def previous_in(order: Sequence[str]) -> dict[str, list[str]]:
    """Each stage -> the stage before it in `order` (none for the first)."""
    return {name: [order[i - 1]] for i, name in enumerate(order) if i}


def options(s: Session) -> RunOptions:
    cached = s.cache.get("run_options")
    if not isinstance(cached, RunOptions) or cached.graph is not s.graph:
        cached = s.cache["run_options"] = RunOptions(tuple(s.argv), s.graph)
    return cached


def stages(s: Session) -> Iterator[TaskDict]:
    """One task per stage, named after it: `doit 04-kubernetes-ingress` applies it and what it needs."""
    opts = options(s)
    disable_render = bool(opts.deploy["disable_render"])
    for stage in s.graph.stages:
        deps = ["_lock", *stage.depends_on, *opts.before.get(stage.name, [])]
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


def lock(s: Session) -> TaskDict:
    """Every stage task depends on this one: the project lock, then the checks before any apply."""
    return {
        "basename": "_lock",
        "actions": [(failing_cleanly(actions.do_preflight), [s, options(s).stages])],
        "verbosity": 2,
    }


def render(s: Session) -> Iterator[TaskDict]:
    """Render every stage (only changed ones are rewritten)"""
    yield {"basename": "render", "name": None}
    # The CI workflow of ci_cd (nothing when its type is none); written files only.
    yield {
        "basename": "render",
        "name": "ci_cd",
        "actions": [(failing_cleanly(actions.do_render_ci), [s])],
        "verbosity": 2,
    }
    for stage in s.graph.stages:
        yield {
            "basename": "render",
            "name": stage.name,
            "actions": [(failing_cleanly(actions.do_render), [s, stage.name])],
            "uptodate": [_render_uptodate(s, stage.name)],
            "verbosity": 2,
        }


def deploy(s: Session) -> TaskDict:
    """Apply the stages whose inputs changed (--stop-at STAGE, --disable-render)."""
    stop_at = options(s).deploy["stop_at"]
    names = s.graph.up_to(stop_at) if stop_at and stop_at in s.graph else s.graph.names
    return {
        "basename": "deploy",
        "actions": [(failing_cleanly(actions.do_deploy_done), [s, stop_at])],
        "task_dep": [*names, *([] if options(s).deploy["disable_render"] else ["render:ci_cd"])],
        "params": DEPLOY_PARAMS,
        "verbosity": 2,
    }


def plan(s: Session) -> Iterator[TaskDict]:
    """Plan every stage, each with its upstreams' planned outputs; `doit apply_plan` applies them"""
    before = options(s).before
    yield {"basename": "plan", "name": None}
    for stage in s.graph.stages:
        yield {
            "basename": "plan",
            "name": stage.name,
            "actions": [(failing_cleanly(actions.do_plan), [s, stage.name])],
            # Upstream plans first: their planned outputs are this plan's inputs.
            "task_dep": [
                "_lock",
                f"render:{stage.name}",
                *(f"plan:{d}" for d in [*stage.depends_on, *before.get(stage.name, [])]),
            ],
            "verbosity": 2,
        }


def apply_plan(s: Session) -> Iterator[TaskDict]:
    """Apply the saved plans"""
    before = options(s).before
    yield {"basename": "apply_plan", "name": None}
    for stage in s.graph.stages:
        yield {
            "basename": "apply_plan",
            "name": stage.name,
            "actions": [(failing_cleanly(actions.do_apply_plan), [s, stage.name])],
            "task_dep": [
                "_lock",
                *(f"apply_plan:{d}" for d in [*stage.depends_on, *before.get(stage.name, [])]),
            ],
            "verbosity": 2,
        }


def destroy(s: Session) -> Iterator[TaskDict]:
    """Destroy every stage not kept"""
    opts = options(s)
    graph, keep = s.graph, opts.keep
    # Serial: exactly the reverse of `doit list`.
    after = previous_in([n for n in reversed(graph.names) if n not in keep]) if opts.serial else {}
    # A whole `doit destroy` also destroys the stages that left the graph, first: they
    # may need what the stages still in it provide (the cluster).
    orphans_first = ["destroy_orphans"] if "destroy" in s.argv[1:] else []
    yield {"basename": "destroy", "name": None, "params": DESTROY_PARAMS}
    for stage in graph.stages:
        if stage.name in keep:
            continue
        yield {
            "basename": "destroy",
            "name": stage.name,
            "actions": [(failing_cleanly(actions.do_destroy), [s, stage.name])],
            "task_dep": [
                "_lock",
                *orphans_first,
                *(f"destroy:{d}" for d in graph.dependents(stage.name) if d not in keep),
                *(f"destroy:{d}" for d in after.get(stage.name, [])),
            ],
            "uptodate": [_destroyed_uptodate(s, stage.name)],
            "verbosity": 2,
        }


def forget_state(s: Session) -> TaskDict:
    """Accept that a stage's Terraform state is lost: forget its record: doit forget_state STAGE."""
    return {
        "basename": "forget_state",
        "actions": [(failing_cleanly(actions.do_forget_state), [s])],
        "pos_arg": "stages",
        "verbosity": 2,
    }


def destroy_orphans(s: Session) -> TaskDict:
    """Destroy stages that left the graph (plugin disabled or uninstalled) from their recorded render and state."""
    return {
        "basename": "destroy_orphans",
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
