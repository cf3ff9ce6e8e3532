"""A serial deploy applies stages in exactly the order `doit list` prints them; a parallel
one never starts a stage before everything it depends on finished. Over random graphs of
plugin stages (Hypothesis), run through doit itself, in this process.

Each generated stage replaces or adds to the built-in ones and brings its own driver (the
stage API's `driver`): `OrderLog`, a fake that records when each apply starts and ends
instead of running Terraform. Everything else — the doit tasks, their dependencies, the
render, the records, the up-to-date checks — is the product's own.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.cmd_base import ModuleTaskLoader
from doit.doit_cmd import DoitMain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field, create_model
from sandboxproject import BUILTIN_STAGE_NAMES, ROOT

from stagegraph.doitconfig import DOIT_CONFIG
from stagegraph.driver import ApplyResult, StageContext
from stagegraph.stage import NoInputs, RenderContext, Rendered, Stage, StageIO
from stagegraph.tasks import Session, make_task_creators
from stagegraph.tfjson import TerraformModule

Outputs = create_model("Outputs", __base__=StageIO, value=(str, Field(description="value")))


class OrderLog:
    """A fake stage driver: records ("start"|"end", stage) events, applies nothing."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _event(self, kind: str, name: str) -> None:
        with self._lock:
            self.events.append((kind, name))

    def apply(self, ctx: StageContext) -> ApplyResult:
        self._event("start", ctx.stage.name)
        time.sleep(0.005)  # long enough for a wrongly started dependent to show up
        self._event("end", ctx.stage.name)
        return ApplyResult({"value": ctx.stage.name})

    def plan(self, ctx: StageContext, out: Path) -> bool:  # pragma: no cover - not used here
        return True

    def apply_plan(self, ctx: StageContext, plan: Path) -> ApplyResult:  # pragma: no cover
        return self.apply(ctx)

    def destroy(self, ctx: StageContext) -> None:  # pragma: no cover - not used here
        pass

    def applied(self) -> list[str]:
        return [name for kind, name in self.events if kind == "start"]


def _render(ctx: RenderContext) -> Rendered:
    m = TerraformModule(sandbox=True, comment="generated")
    m.resource("terraform_data", "x", {"input": 1})
    return {"main.tf.json": m.document()}


@st.composite
def plugin_graphs(draw: Any) -> list[tuple[str, tuple[str, ...], int]]:
    """(name, depends_on, priority): every built-in name replaced, plus 0-6 new stages."""
    extra = [f"{n:02d}-plugin" for n in draw(st.sets(st.integers(12, 40), max_size=6))]
    names = draw(st.permutations([*BUILTIN_STAGE_NAMES, *extra]))
    out = []
    for i, name in enumerate(names):
        deps = draw(st.sets(st.sampled_from(names[:i]), max_size=3)) if i else set()
        out.append((name, tuple(sorted(deps)), draw(st.integers(1000, 1010))))
    return out


_counter = itertools.count()


@contextlib.contextmanager
def _project(base: Path) -> Iterator[Path]:
    root = base / f"p{next(_counter)}"
    (root / "lockfiles").mkdir(parents=True)
    shutil.copy(ROOT / "lockfiles" / "versions.yaml", root / "lockfiles" / "versions.yaml")
    shutil.copy(ROOT / "nebari-config.yaml", root / "nebari-config.yaml")
    cwd = os.getcwd()
    os.chdir(root)  # doit's database path is relative to the working directory
    try:
        yield root
    finally:
        os.chdir(cwd)


def _doit(root: Path, stages: list[Stage], *args: str) -> str:
    session = Session(root, ["doit", *args], None, extra_stages=stages)
    tasks = {"DOIT_CONFIG": DOIT_CONFIG, **make_task_creators(session)}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = DoitMain(ModuleTaskLoader(tasks), config_filenames=()).run(list(args))
    assert code == 0, out.getvalue()
    return out.getvalue()


def _stages(shape: list[tuple[str, tuple[str, ...], int]], log: OrderLog) -> list[Stage]:
    return [
        Stage(
            name=name,
            description="generated",
            render=_render,
            depends_on=deps,
            outputs=Outputs,
            connect=lambda up: NoInputs(),
            priority=priority,
            driver=log,
            source="test plugin",
        )
        for name, deps, priority in shape
    ]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=plugin_graphs())
def test_serial_deploy_takes_the_order_doit_list_prints(tmp_path: Path, shape: Any) -> None:
    log = OrderLog()
    with _project(tmp_path) as root:
        stages = _stages(shape, log)
        listing = _doit(root, stages, "list")
        names = {name for name, _, _ in shape}
        listed = [
            line.split()[0] for line in listing.splitlines() if line.split() and line.split()[0] in names
        ]
        assert sorted(listed) == sorted(names)
        _doit(root, stages, "-n", "1", "deploy")
    assert log.applied() == listed


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=plugin_graphs())
def test_parallel_deploy_starts_a_stage_only_after_all_it_needs(tmp_path: Path, shape: Any) -> None:
    log = OrderLog()
    with _project(tmp_path) as root:
        _doit(root, _stages(shape, log), "-n", "3", "deploy")
    position = {event: i for i, event in enumerate(log.events)}
    assert len(log.applied()) == len(shape)
    for name, deps, _ in shape:
        for dep in deps:
            assert position[("end", dep)] < position[("start", name)], (dep, name)
