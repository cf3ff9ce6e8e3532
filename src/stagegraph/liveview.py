"""The live view of a run on a terminal: the running stages, how long each has run, the
resource Terraform is on, and what waits on what; finished stages scroll above it as the
same prefixed lines the plain console prints.

Only on an interactive terminal (`live_wanted`): in CI, in a pipe, with TERM=dumb or
STAGEGRAPH_VERBOSE / STAGEGRAPH_PLAIN set, output stays the plain prefixed lines of
`stagegraph.console.Console`, which this class extends. Drawn with `rich` (imported only
here, and this module only by the action that runs stages), which redraws the view in
place and keeps lines printed meanwhile above it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from stagegraph.console import Console, format_seconds

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from stagegraph.graph import StageGraph
    from stagegraph.summary import RunSummary


def live_wanted(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """An interactive terminal, not CI, not asked for plain or verbose output."""
    env = os.environ if env is None else env
    if env.get("CI") or env.get("STAGEGRAPH_PLAIN") or env.get("STAGEGRAPH_VERBOSE"):
        return False
    if env.get("TERM", "") in ("", "dumb"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


@dataclass
class _Running:
    started: float
    doing: str = ""


@dataclass
class _State:
    running: dict[str, _Running] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)


#: The view on screen now, if any: doit's reporter writes through it (see doitconfig).
ACTIVE: LiveConsole | None = None

_STYLES = {"applied": "green", "destroyed": "green", "planned": "green", "failed": "bold red"}


class LiveConsole(Console):
    """A `Console` that keeps a live table of the run under the finished lines."""

    def __init__(
        self,
        graph: StageGraph,
        summary: RunSummary,
        stream: TextIO | None = None,
        clock: Any = time.monotonic,
        run_stages: Sequence[str] | None = None,
    ) -> None:
        super().__init__(stream, stage_names=graph.names)
        self._run = set(run_stages) if run_stages is not None else set(graph.names)
        from rich.console import Console as RichConsole

        self._graph = graph
        self._summary = summary
        self._clock = clock
        self._rich = RichConsole(file=stream, highlight=False, soft_wrap=True)
        self._state = _State()
        self._state_lock = threading.Lock()
        self._live: Live | None = None
        self._live_lock = threading.Lock()

    # --- what the engine calls ----------------------------------------------------------

    def start(self, stage: str) -> None:
        with self._state_lock:
            self._state.running[stage] = _Running(self._clock())
        self._ensure_live()

    def finish(self, stage: str, status: str, seconds: float, detail: str = "") -> None:
        with self._state_lock:
            self._state.running.pop(stage, None)
            self._state.finished.add(stage)
        key = status.split(":")[0].split(" (")[0].strip()
        text = f"{status} in {format_seconds(seconds)}" + (f": {detail}" if detail else "")
        self._print(stage, [text], _STYLES.get(key, ""))

    def lines(self, stage: str, texts: Sequence[str]) -> None:
        with self._state_lock:
            running = self._state.running.get(stage)
            if running is not None and texts:
                # Terraform's progress: the view shows the latest; the log file has them all.
                running.doing = texts[-1].strip()
                return
        self._print(stage, list(texts), "")

    def line(self, stage: str, text: str) -> None:
        self.lines(stage, text.splitlines() or [""])

    def show_failure(self, stage: str, message: str, tail: Sequence[str], log: Path | None) -> None:
        with self._state_lock:
            self._state.running.pop(stage, None)
            self._state.finished.add(stage)
        lines = [f"FAILED: {message}"]
        if tail:
            lines += ["last lines of output:", *(f"  | {t.rstrip()}" for t in tail)]
        if log is not None:
            lines.append(f"full log: {log}")
        self._print(stage, lines, "red")

    def warn(self, stage: str, text: str) -> None:
        self._print(stage, text.splitlines() or [""], "yellow")

    def close(self) -> None:
        """Take the view down (at the end of the run, before the summary line)."""
        global ACTIVE
        with self._live_lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()
        if ACTIVE is self:
            ACTIVE = None

    def write_above(self, text: str) -> None:
        """Text from elsewhere (doit's reporter) while the view is up: above it, whole lines."""
        with self._lock:
            self._rich.print(text.rstrip("\n"), markup=False, highlight=False)

    # --- drawing ----------------------------------------------------------------------------

    def _ensure_live(self) -> None:
        # Its own lock: starting the view draws it once, which takes the state lock.
        with self._live_lock:
            if self._live is not None:
                return
            from rich.live import Live

            self._live = Live(
                get_renderable=self.view,
                console=self._rich,
                refresh_per_second=4,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
            global ACTIVE
            ACTIVE = self

    def _print(self, stage: str, texts: list[str], style: str) -> None:
        from rich.text import Text

        prefix = self._prefix(stage, False)
        with self._lock:
            for text in texts:
                line = Text(prefix, style="cyan")
                line.append(text, style=style)
                self._rich.print(line)

    def view(self) -> RenderableType:
        """The table under the finished lines: running stages, then what waits on them."""
        from rich.table import Table

        now = self._clock()
        done = self._done()
        with self._state_lock:
            running = dict(self._state.running)
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True, min_width=12)
        table.add_column(no_wrap=True, justify="right", min_width=8)
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        for name, run in running.items():
            table.add_row(f"[bold]{name}[/]", format_seconds(now - run.started), run.doing or "starting")
        for stage in self._graph.stages:
            if stage.name in running or stage.name in done or stage.name not in self._run:
                continue
            blockers = [d for d in stage.depends_on if d not in done]
            if any(b in running for b in blockers) or (blockers and running):
                table.add_row(f"[dim]{stage.name}[/]", "", f"[dim]waits on {', '.join(blockers)}[/]")
        title = f"{len(done)} of {len(self._graph.stages)} stages done, {len(running)} running"
        table.add_row(f"[dim]{title}[/]", "", "")
        return table

    def _done(self) -> set[str]:
        with self._state_lock:
            finished = set(self._state.finished)
        return finished | {r.stage for r in self._summary.stages}
