"""A machine-readable summary of one run: what each stage did, how long, and why.

CI jobs and dashboards read `<state>/last-run.json` (or the history in `<state>/runs/`)
instead of scraping console output. Stages are listed in the order they finished, which
under `-P` is the order things really happened.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from stagegraph.atomic import write_atomic

Status = Literal["applied", "skipped", "failed", "not-run", "destroyed", "planned"]
STATUSES: tuple[str, ...] = get_args(Status)

RUNS_DIR = "runs"
LAST_RUN = "last-run.json"


@dataclass(frozen=True)
class StageResult:
    stage: str
    status: Status
    duration_s: float
    reason: str
    finished_at: str


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RunSummary:
    """Collects stage results from doit's threads; `write()` saves them as JSON."""

    def __init__(self, command: str, started_at: datetime | None = None) -> None:
        self.command = command
        self.started_at = started_at or datetime.now(UTC)
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._results: dict[str, StageResult] = {}  # insertion order = finishing order
        self._path: Path | None = None
        #: Lines for the user after the one-line summary (what a destroy left behind).
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def add(self, stage: str, status: Status | str, duration: float, reason: str = "") -> None:
        """Record what `stage` did. A later result for the same stage replaces the earlier
        one and moves to the end (e.g. an up-to-date check, then the action itself)."""
        if status not in STATUSES:
            raise ValueError(f"unknown stage status {status!r}; expected one of {', '.join(STATUSES)}")
        result = StageResult(
            stage=stage,
            status=cast(Status, status),  # checked against STATUSES above
            duration_s=round(max(duration, 0.0), 3),
            reason=reason.splitlines()[0] if reason else "",
            finished_at=_iso(datetime.now(UTC)),
        )
        with self._lock:
            self._results.pop(stage, None)
            self._results[stage] = result

    def mark_not_run(self, stages: Iterable[str], reason: str = "an earlier stage failed") -> None:
        """Record every stage of `stages` that has no result yet as not-run."""
        with self._lock:
            missing = [s for s in stages if s not in self._results]
        for stage in missing:
            self.add(stage, "not-run", 0.0, reason)

    @property
    def stages(self) -> list[StageResult]:
        with self._lock:
            return list(self._results.values())

    def totals(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for result in self.stages:
            counts[result.status] += 1
        return counts

    @property
    def ok(self) -> bool:
        return not any(r.status == "failed" for r in self.stages)

    def one_line(self) -> str:
        """e.g. `deploy: 2 applied, 8 skipped in 14.2 s` (statuses with zero left out)."""
        parts = [f"{n} {status}" for status, n in self.totals().items() if n]
        took = time.monotonic() - self._t0
        return f"{self.command}: {', '.join(parts) or 'no stages'} in {took:.1f} s"

    def to_dict(self) -> dict[str, Any]:
        finished = datetime.now(UTC)
        return {
            "command": self.command,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(finished),
            "duration_s": round(time.monotonic() - self._t0, 3),
            "ok": self.ok,
            "totals": self.totals(),
            "stages": [asdict(r) for r in self.stages],
            "notes": list(self.notes),
        }

    def write(self, root: Path) -> Path:
        """Write `<root>/runs/<start time>-<command>.json` and `<root>/last-run.json`.

        Calling it again (say at exit, after an explicit call) rewrites the same run file.
        """
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        with self._lock:
            if self._path is None:
                self._path = self._new_path(root / RUNS_DIR)
            path = self._path
        write_atomic(path, text)
        write_atomic(root / LAST_RUN, text)
        return path

    def _new_path(self, runs: Path) -> Path:
        stamp = self.started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        command = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.command) or "run"
        path = runs / f"{stamp}-{command}.json"
        n = 2
        while path.exists():  # two runs started in the same second (plan, then validate)
            path = runs / f"{stamp}-{command}-{n}.json"
            n += 1
        return path
