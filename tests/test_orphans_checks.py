"""Which records are orphans, and what the orphan destroy refuses to run, in process.

The end-to-end flow through `python -m doit` is in tests/test_orphans.py; these are the
rules on their own, on a project whose records and folders the test writes by hand.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stagegraph.errors import DeployError
from stagegraph.orphans import (
    OrphanedStagesError,
    _outside_reach,
    _recorded_files,
    _recorded_variables,
    find_orphans,
    refuse_orphans,
)
from stagegraph.project import Project
from stagegraph.records import StageRecord

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    shutil.copy(ROOT / "nebari-config.yaml", tmp_path / "nebari-config.yaml")
    return Project(
        root=tmp_path,
        config_path=tmp_path / "nebari-config.yaml",
        lockfile_path=ROOT / "lockfiles" / "versions.yaml",
    )


def applied(
    project: Project, stage: str, inputs: dict[str, str] | None = None, source: str = "p"
) -> StageRecord:
    return project.records.record_success(
        stage, fingerprint="fp", inputs=inputs or {}, outputs={}, attempted_at=T0, source=source
    )


def folder(project: Project, stage: str, files: dict[str, Any]) -> Path:
    where = project.output_root / stage
    where.mkdir(parents=True)
    (where / ".stagegraph-render.json").write_text(json.dumps({"stage": stage, "files": {}}))
    for name, content in files.items():
        (where / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return where


def test_orphans_are_records_that_may_have_resources_and_no_stage(project: Project) -> None:
    names = project.graph.names
    applied(project, "01-terraform-state")  # in the graph: not an orphan
    applied(project, "045-applied", source="hello")
    applied(project, "046-destroyed")
    project.records.record_destroyed("046-destroyed")
    # Planned, never applied, nothing on disk: no resources can exist.
    project.records.record_failure("047-planned", "planned, never applied", None)
    # A first apply that failed half way, leaving state: its resources may exist.
    project.records.record_failure("048-half", "apply failed", None)
    folder(project, "048-half", {"terraform.tfstate": "{}"})
    found = find_orphans(project, names)
    assert [o.stage for o in found] == ["045-applied", "048-half"]
    assert found[0].plugin == "hello"
    with pytest.raises(OrphanedStagesError) as err:
        refuse_orphans(project, names)
    assert str(err.value) == (
        "stages 045-applied, 048-half applied but no longer in the graph (plugin disabled or uninstalled), "
        "nothing applied: destroy with `doit destroy_orphans`, or enable plugin hello again in "
        "nebari-config.yaml (stagegraph.plugins)"
    )


@pytest.mark.parametrize(
    ("doc", "found"),
    [
        ({"resource": {"terraform_data": {"x": {"input": 1}}}}, []),
        (
            {"resource": {"terraform_data": {"x": {"provisioner": {"local-exec": {"command": "rm -rf ~"}}}}}},
            ["provisioners"],
        ),
        ({"data": {"external": {"x": {"program": ["sh"]}}}}, ["an external data source"]),
        ({"module": {"m": {"source": "../../elsewhere"}}}, ["modules"]),
        ({"terraform": {"backend": {"local": {"path": "/etc/state"}}}}, ["a backend"]),
    ],
)
def test_what_a_destroy_would_run_beyond_the_folder_is_found(doc: dict[str, Any], found: list[str]) -> None:
    assert _outside_reach(doc) == found


def test_a_record_naming_a_file_outside_the_folder_is_refused(project: Project) -> None:
    where = folder(project, "045-x", {})
    record = applied(project, "045-x", {"file:../../escape.tf.json": "abc"})
    with pytest.raises(DeployError, match=r"names a file outside it \('../../escape.tf.json'\)"):
        _recorded_files(where, record)


def test_secret_variables_need_the_plugin(project: Project) -> None:
    where = folder(project, "045-x", {"stagegraph.tfvars.json": {}})
    record = applied(project, "045-x", {"secret:api_token": "d"})
    with pytest.raises(DeployError) as err:
        _recorded_variables(where, record)
    assert str(err.value) == (
        "stage 045-x reads secret variables (api_token) that only its plugin can resolve; enable the "
        "plugin again and run `doit destroy:045-x`"
    )


def test_status_lists_orphans_and_unreadable_records_of_unknown_stages(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from stagegraph.actions import do_status
    from stagegraph.tasks import Session

    shutil.copy(ROOT / "dodo.py", project.root / "dodo.py")
    session = Session(project.root, ["doit", "status"], str(project.config_path))
    applied(session.project, "045-applied", source="hello")
    (session.project.records.directory / "046-garbled.json").write_text("{not json")
    do_status(session)
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["045-applied"].split()[1] == "orphaned"
    assert rows["045-applied"].endswith(
        "not in the graph (plugin hello disabled or uninstalled); `doit destroy_orphans` destroys it"
    )
    assert rows["046-garbled"].split()[1:3] == ["unknown", "-"]
    assert "unreadable deploy record" in rows["046-garbled"]
    assert rows["01-terraform-state"].split()[1:3] == ["never", "applied"]


def test_only_the_configs_own_backend_passes_in_an_orphans_render(tmp_path: Path) -> None:
    # A committed render and its record are untrusted: a backend pointing at another
    # deployment's state would have the orphan destroy run against that state.
    from stagegraph.orphans import _check_render

    ours = {"s3": {"bucket": "team", "key": "demo/045-hello.tfstate"}}
    folder = tmp_path / "045-hello"
    folder.mkdir()
    write = (folder / "backend.tf.json").write_text
    write(json.dumps({"//": "generated", "terraform": {"backend": ours}}))
    _check_render(folder, ["backend.tf.json"], "045-hello", ours)
    for other in (
        {"s3": {"bucket": "team", "key": "prod/07-kubernetes-services.tfstate"}},
        {"kubernetes": {"secret_suffix": "prod"}},
    ):
        write(json.dumps({"terraform": {"backend": other}}))
        with pytest.raises(DeployError, match="has a backend"):
            _check_render(folder, ["backend.tf.json"], "045-hello", ours)
    write(json.dumps({"terraform": {"backend": ours}}))
    with pytest.raises(DeployError, match="has a backend"):  # the config says local state
        _check_render(folder, ["backend.tf.json"], "045-hello", None)
