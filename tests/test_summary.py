"""Run summaries: per-stage results in finishing order, written atomically as JSON."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stagegraph.summary import STATUSES, RunSummary

START = datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)


def test_collects_in_finishing_order_with_totals() -> None:
    summary = RunSummary("deploy", started_at=START)
    summary.add("01-terraform-state", "skipped", 0.0, "up to date")
    summary.add("02-infrastructure", "applied", 12.3456, "inputs changed: file:main.tf.json")
    summary.add("03-kubernetes-initialize", "failed", 1.0, "terraform apply failed\nsecond line")
    summary.mark_not_run(["02-infrastructure", "04-kubernetes-ingress", "05-kubernetes-keycloak"])
    assert [r.stage for r in summary.stages] == [
        "01-terraform-state",
        "02-infrastructure",
        "03-kubernetes-initialize",
        "04-kubernetes-ingress",
        "05-kubernetes-keycloak",
    ]
    assert summary.stages[1].duration_s == 12.346
    assert summary.stages[2].reason == "terraform apply failed"
    assert summary.totals() == {
        "applied": 1,
        "skipped": 1,
        "failed": 1,
        "not-run": 2,
        "destroyed": 0,
        "planned": 0,
    }
    assert not summary.ok
    assert re.fullmatch(r"deploy: 1 applied, 1 skipped, 1 failed, 2 not-run in \d+\.\d s", summary.one_line())


def test_later_result_for_a_stage_replaces_the_earlier() -> None:
    summary = RunSummary("deploy")
    summary.add("a", "skipped", 0.0, "up to date")
    summary.add("b", "applied", 1.0)
    summary.add("a", "applied", 2.0, "inputs changed")
    assert [(r.stage, r.status) for r in summary.stages] == [("b", "applied"), ("a", "applied")]


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stage status 'done'"):
        RunSummary("deploy").add("a", "done", 0.0)


def test_write_run_file_and_last_run(tmp_path: Path) -> None:
    summary = RunSummary("deploy", started_at=START)
    for status in STATUSES:
        summary.add(f"stage-{status}", status, 1.5, f"because {status}")
    path = summary.write(tmp_path)
    assert path == tmp_path / "runs" / "20261122T010203Z-deploy.json"
    doc = json.loads(path.read_text())
    assert (tmp_path / "last-run.json").read_text() == path.read_text()
    assert doc["command"] == "deploy"
    assert doc["started_at"] == "2026-11-22T01:02:03Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["finished_at"])
    assert doc["totals"] == dict.fromkeys(STATUSES, 1)
    assert [s["stage"] for s in doc["stages"]] == [f"stage-{s}" for s in STATUSES]
    assert doc["stages"][0] == {
        "stage": "stage-applied",
        "status": "applied",
        "duration_s": 1.5,
        "reason": "because applied",
        "finished_at": doc["stages"][0]["finished_at"],  # checked below: not a constant
    }
    for stage in doc["stages"]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stage["finished_at"])
        # A stage finishes within its run (ISO UTC stamps compare as strings).
        assert doc["started_at"] <= stage["finished_at"] <= doc["finished_at"]
    # Writing again (at exit, after an explicit write) updates the same run file.
    summary.add("late", "applied", 0.1)
    assert summary.write(tmp_path) == path
    assert len(list((tmp_path / "runs").iterdir())) == 1
    assert json.loads(path.read_text())["stages"][-1]["stage"] == "late"


def test_two_runs_in_the_same_second_do_not_overwrite(tmp_path: Path) -> None:
    first = RunSummary("plan", started_at=START).write(tmp_path)
    second = RunSummary("plan", started_at=START).write(tmp_path)
    odd = RunSummary("deploy --stop-at x/y", started_at=START).write(tmp_path)
    assert first.name == "20261122T010203Z-plan.json"
    assert second.name == "20261122T010203Z-plan-2.json"
    assert odd.name == "20261122T010203Z-deploy_--stop-at_x_y.json"


def test_threads_adding_concurrently() -> None:
    summary = RunSummary("deploy")

    def work(i: int) -> None:
        for n in range(50):
            summary.add(f"stage-{i}-{n}", "applied", 0.01)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert summary.totals()["applied"] == 400
    assert len({r.stage for r in summary.stages}) == 400
