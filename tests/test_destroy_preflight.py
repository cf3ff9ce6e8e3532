"""A destroy reads every stage it will destroy before it destroys any.

A lost state or a render that is gone or edited, found only when the run reaches that
stage, would leave the deployment half destroyed: its dependents gone, itself and what it
needs still up. Runs `doit` in a sandbox deployment through real Terraform; one deployment
serves the refusals (a refused destroy changes nothing), the last test destroys it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sandboxproject import BUILTIN_STAGE_NAMES, SandboxProject

from stagegraph.commands.engine import RunOptions
from stagegraph.graph import build_graph
from stagegraph.stages.builtin import BUILTIN_STAGES

GRAPH = build_graph(BUILTIN_STAGES)


def test_the_stages_a_destroy_command_reaches() -> None:
    def reached(*argv: str) -> list[str]:
        return RunOptions(("doit", *argv), GRAPH).destroying

    assert reached("destroy") == list(reversed(GRAPH.names))
    assert reached("destroy", "--keep", "03-kubernetes-initialize") == [
        n
        for n in reversed(GRAPH.names)
        if n not in ("01-terraform-state", "02-infrastructure", "03-kubernetes-initialize")
    ]
    # One stage: it and what depends on it, in the order they go.
    assert reached("destroy:07-kubernetes-services") == [
        "11-kubernetes-kuberhealthy-healthchecks",
        "08-nebari-tf-extensions",
        "07-kubernetes-services",
    ]
    assert reached("destroy:10-kubernetes-kuberhealthy") == [
        "11-kubernetes-kuberhealthy-healthchecks",
        "10-kubernetes-kuberhealthy",
    ]
    # Serial (-n 1): each waits for the one before it in reverse runtime order.
    assert reached("-n", "1", "destroy:07-kubernetes-services") == [
        n
        for n in reversed(GRAPH.names)
        if GRAPH.names.index(n) >= GRAPH.names.index("07-kubernetes-services")
    ]


def _state(p: SandboxProject, stage: str) -> Path:
    return p.stage_dir(stage) / "terraform.tfstate"


def _lose_state(p: SandboxProject) -> Path:
    path = _state(p, "03-kubernetes-initialize")
    path.unlink()
    return path


def _edit_render(p: SandboxProject) -> Path:
    path = p.stage_dir("05-kubernetes-keycloak") / "main.tf.json"
    path.write_text("{ not json")
    return path


def _drop_render_file(p: SandboxProject) -> Path:
    path = p.stage_dir("06-kubernetes-keycloak-configuration") / "main.tf.json"
    path.unlink()
    return path


def _drop_manifest(p: SandboxProject) -> Path:
    path = p.stage_dir("04-kubernetes-ingress") / ".stagegraph-render.json"
    path.unlink()
    return path


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize(
    ("damage", "stage", "says", "todo"),
    [
        (
            _lose_state,
            "03-kubernetes-initialize",
            "is missing, but the stage was applied",
            "doit forget_state",
        ),
        (
            _edit_render,
            "05-kubernetes-keycloak",
            "differs from both its last render and its last apply",
            "doit render",
        ),
        (_drop_render_file, "06-kubernetes-keycloak-configuration", "is missing (stage", "doit render"),
        (_drop_manifest, "04-kubernetes-ingress", "its render is gone", "doit render"),
    ],
)
def test_a_problem_in_any_stage_refuses_the_destroy_before_any_stage_goes(
    deployed: SandboxProject,
    damage: Callable[[SandboxProject], Path],
    stage: str,
    says: str,
    todo: str,
    tmp_path: Path,
) -> None:
    folder = deployed.stage_dir(stage)
    backup = tmp_path / "stage"
    shutil.copytree(folder, backup)
    try:
        path = damage(deployed)
        before = deployed.records()
        proc = deployed.doit("-n", "1", "destroy", check=False)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "Traceback" not in out, out
        errors = [line for line in out.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, out
        assert str(path) in errors[0] and f"stage {stage}" in errors[0] and says in errors[0], errors[0]
        assert todo in errors[0]
        # Nothing destroyed, the stages destroyed before it in the order included.
        assert deployed.records() == before
        assert {r["status"] for r in before.values()} == {"applied"}
    finally:
        shutil.rmtree(folder)
        shutil.move(backup, folder)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_destroy_checks_only_what_it_destroys_and_an_applied_hand_edit_is_fine(
    deployed: SandboxProject,
) -> None:
    # 03's state is lost; destroying 10 (and 11, which needs it) does not touch 03.
    state = _state(deployed, "03-kubernetes-initialize")
    kept = state.read_bytes()
    state.unlink()
    deployed.doit("destroy:10-kubernetes-kuberhealthy")
    records = deployed.records()
    assert {n for n, r in records.items() if r["status"] == "destroyed"} == {
        "10-kubernetes-kuberhealthy",
        "11-kubernetes-kuberhealthy-healthchecks",
    }
    state.write_bytes(kept)
    # A hand edit applied with --disable-render is what the stage was applied with.
    main = deployed.stage_dir("08-nebari-tf-extensions") / "main.tf.json"
    doc = json.loads(main.read_text())
    doc.setdefault("output", {})["by_hand"] = {"value": "edited"}
    main.write_text(json.dumps(doc))
    deployed.doit("deploy", "--disable-render", "--stop-at", "08-nebari-tf-extensions")
    deployed.doit("destroy")
    assert {r["status"] for r in deployed.records().values()} == {"destroyed"}
    assert set(deployed.records()) == set(BUILTIN_STAGE_NAMES)


def test_a_failed_first_apply_into_a_backend_still_has_something_to_destroy(tmp_path: Path) -> None:
    # With local state, no state file after a failed first apply means nothing was made.
    # With a backend (S3, the cluster's Secrets) the state is elsewhere: ask Terraform.
    from stagegraph.destroy import is_destroyed
    from stagegraph.project import Project
    from stagegraph.render import BACKEND_FILE

    root = tmp_path / "p"
    SandboxProject.create(root)
    lockfile = Path(__file__).resolve().parents[1] / "lockfiles" / "versions.yaml"
    project = Project(root=root, config_path=root / "nebari-config.yaml", lockfile_path=lockfile)
    name = "07-kubernetes-services"
    project.records.record_failure(name, "apply failed half way", None)
    stage_dir = project.stage_dir(project.graph[name])
    stage_dir.mkdir(parents=True)
    assert is_destroyed(project, name)
    (stage_dir / BACKEND_FILE).write_text('{"terraform": {"backend": {"s3": {}}}}')
    assert not is_destroyed(project, name)
