"""The live view of a run on a terminal, and the plain lines everywhere else.

The view is drawn by rich into a string here (a terminal of fixed width), with a clock the
test moves; one test runs `doit deploy` on a real pseudo-terminal.
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

from rich.console import Console as RichConsole
from sandboxproject import SandboxProject

from stagegraph.graph import build_graph
from stagegraph.liveview import LiveConsole, live_wanted
from stagegraph.stage import Stage
from stagegraph.summary import RunSummary


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stage(name: str, *deps: str) -> Stage:
    return Stage(name=name, description=name, render=lambda ctx: {}, depends_on=deps)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_only_on_an_interactive_terminal_outside_ci() -> None:
    tty = Terminal()
    assert live_wanted(tty, {"TERM": "xterm"})
    assert not live_wanted(io.StringIO(), {"TERM": "xterm"})  # a pipe
    assert not live_wanted(tty, {"TERM": "xterm", "CI": "true"})
    assert not live_wanted(tty, {"TERM": "dumb"})
    assert not live_wanted(tty, {"TERM": "xterm", "STAGEGRAPH_VERBOSE": "1"})


def test_the_view_shows_running_stages_their_time_their_resource_and_who_waits() -> None:
    graph = build_graph([stage("a"), stage("b", "a"), stage("c", "a"), stage("d", "b", "c")])
    clock = Clock()
    out = Terminal()
    live = LiveConsole(graph, RunSummary("deploy"), stream=out, clock=clock)
    live._rich = RichConsole(file=out, width=100, force_terminal=False, color_system=None)
    live.finish("a", "applied", 1.0)
    live.start("b")
    clock.now += 12.5
    live.lines("b", ["terraform_data.release: Creating..."])
    render = RichConsole(file=io.StringIO(), width=100, color_system=None)
    with render.capture() as captured:
        render.print(live.view())
    text = captured.get()
    assert re.search(r"b\s+12\.5 s\s+terraform_data\.release: Creating\.\.\.", text)
    assert re.search(r"d\s+waits on b, c", text)
    assert "1 of 4 stages done, 1 running" in text
    # Progress lines of a running stage go to the view, not the scrollback; results do.
    assert "Creating" not in out.getvalue()
    assert "[a] applied in 1.0 s" in out.getvalue()
    live.close()


def test_a_deploy_on_a_terminal_draws_the_view_and_ends_with_the_summary(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    env = {**project.env(), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    for name in ("NO_COLOR", "CI"):
        env.pop(name, None)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [project.python, "-m", "doit", "deploy"],
        cwd=project.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(timeout=30) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))
    assert "stages done" in text and "waits on" in text
    for name in ("01-terraform-state", "07-kubernetes-services", "11-kubernetes-kuberhealthy-healthchecks"):
        assert re.search(rf"\[{name}\]\s+applied in ", text)
    assert text.rstrip().splitlines()[-1].startswith("deploy: 10 applied in ")
    assert "Traceback" not in text
