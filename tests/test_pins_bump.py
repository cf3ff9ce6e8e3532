"""`doit bump` end to end against the local fake registries: dry run, apply, diff, changelog,
and only the stages that use a changed pin go stale."""

from __future__ import annotations

import difflib
from datetime import date
from pathlib import Path

import pytest
from test_pins_fakeregistry import FakeRegistry, fake_registry, repo_project, serve_lockfile  # noqa: F401 - the fixtures `fake`, `project`

from stagegraph.lockfile import load_lockfile
from stagegraph.pins.bump import plan_bump
from stagegraph.pins.cadence import resolve_group
from stagegraph.pins.errors import LookupFailedError
from stagegraph.pins.sources import Sources
from stagegraph.pins.tasks import bump_action, parse_day, run_bump
from stagegraph.pins.usage import stages_using
from stagegraph.stages.builtin import BUILTIN_STAGES

ROOT = Path(__file__).resolve().parents[1]
Q2 = date(2025, 4, 1)  # the kubernetes-helm quarter

#: What upstream published since the lockfile was written (for the kubernetes-helm group).
NEWER = {
    "helm_charts.traefik": [("34.5.0", "2025-03-20T08:00:00Z"), ("35.0.0", "2025-03-28T08:00:00Z")],
    "helm_charts.metallb": [("0.15.2", "2025-02-11T00:00:00Z"), ("0.15.3-rc.1", "2025-03-01T00:00:00Z")],
    "helm_charts.kuberhealthy": [("105", "2025-01-05T00:00:00Z")],
    "kubernetes.kind_node_image": [
        ("v1.31.6", "2025-02-01T00:00:00Z"),
        ("v1.32.2", "2025-02-15T00:00:00Z"),
        ("v1.33.0-rc.1", "2025-03-15T00:00:00Z"),
    ],
    # Not in this quarter's group: must stay as they are.
    "images.traefik": [("v3.3.0", "2025-01-01T00:00:00Z")],
    "providers.kubernetes": [("2.36.0", "2025-02-20T00:00:00Z")],
}


def diff_lines(old: str, new: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_plan_proposes_per_policy_keeps_formats_and_skips_prereleases(fake: FakeRegistry) -> None:
    lock = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
    registries = serve_lockfile(fake, lock, NEWER)
    plan = plan_bump(lock, resolve_group(None, Q2), Sources(registries))
    by_key = {p.key: p for p in plan.proposals}
    assert [(p.key, p.current, p.proposed) for p in plan.changes] == [
        ("kubernetes.max_version", "1.31", "1.32"),
        ("kubernetes.kind_node_image", "v1.31.4", "v1.32.2"),
        ("helm_charts.metallb", "0.14.9", "0.15.2"),
        ("helm_charts.traefik", "34.4.1", "34.5.0"),
    ]
    assert by_key["helm_charts.traefik"].released == date(2025, 3, 20)
    assert by_key["helm_charts.traefik"].note == "newer 35.0.0 needs policy major"
    assert by_key["helm_charts.kuberhealthy"].note == "newer 105 needs policy major"
    assert by_key["kubernetes.kind_node_image"].released == date(2025, 2, 15)  # from the image config blob
    assert by_key["kubernetes.max_version"].note == "follows kubernetes.kind_node_image"
    assert by_key["helm_charts.loki"].note == "up to date"
    # Only this quarter's group was looked up.
    assert not any(s.path.startswith(("/tf/", "/pypi-host/", "/hc/")) for s in fake.seen)


def test_held_pin_is_not_looked_up_and_says_why(fake: FakeRegistry) -> None:
    lock = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
    registries = serve_lockfile(fake, lock, NEWER)
    plan = plan_bump(lock, resolve_group("providers", Q2), Sources(registries))
    by_key = {p.key: p for p in plan.proposals}
    assert by_key["providers.helm"].proposed is None
    assert by_key["providers.helm"].note.startswith("held: helm provider 3.x changes")
    assert by_key["providers.kubernetes"].proposed == "2.36.0"
    assert by_key["providers.kubernetes"].released == date(2025, 2, 20)
    assert fake.hits("/tf/v1/providers/hashicorp/helm/versions") == 0


def test_dry_run_shows_the_table_and_writes_nothing(fake: FakeRegistry, project: object) -> None:
    lockfile = project.lockfile_path  # type: ignore[attr-defined]
    before = lockfile.read_bytes()
    registries = serve_lockfile(fake, project.lock, NEWER)  # type: ignore[attr-defined]
    out = run_bump(project, group=None, apply=False, today=Q2, registries=registries)  # type: ignore[arg-type]
    lines = out.splitlines()
    assert lines[0].startswith(
        "bump kubernetes-helm: maximum Kubernetes version, kind node image and Helm charts"
    )
    assert lines[1].split() == ["pin", "current", "proposed", "released", "policy", "note"]
    traefik = next(line for line in lines if line.startswith("helm_charts.traefik "))
    assert traefik.split()[:5] == ["helm_charts.traefik", "34.4.1", "34.5.0", "2025-03-20", "minor"]
    assert "4 pin(s) to change; stages to re-apply: 02-infrastructure, 04-kubernetes-ingress" in out
    assert lines[-1].startswith("dry run: nothing written")
    assert lockfile.read_bytes() == before
    assert not (lockfile.parent / "CHANGELOG.md").exists()


def test_apply_rewrites_only_version_lines_and_appends_changelog(
    fake: FakeRegistry, project: object, tmp_path: Path
) -> None:
    lockfile = project.lockfile_path  # type: ignore[attr-defined]
    old = lockfile.read_text()
    registries = serve_lockfile(fake, project.lock, NEWER)  # type: ignore[attr-defined]
    report = tmp_path / "bump-report.md"
    out = run_bump(project, group=None, apply=True, today=Q2, registries=registries, report=report)  # type: ignore[arg-type]
    assert out.splitlines()[-1] == (
        "wrote lockfiles/versions.yaml and lockfiles/CHANGELOG.md; `doit deploy` re-renders and "
        "re-applies: 02-infrastructure, 04-kubernetes-ingress"
    )
    new = lockfile.read_text()
    assert diff_lines(old, new) == [
        '-    version: "1.31"',
        '+    version: "1.32"',
        '-    tag: "v1.31.4"',
        '+    tag: "v1.32.2"',
        '-    version: "0.14.9"',
        '+    version: "0.15.2"',
        '-    version: "34.4.1"',
        '+    version: "34.5.0"',
    ]
    assert [line for line in old.splitlines() if "#" in line] == [
        line for line in new.splitlines() if "#" in line
    ]
    # The Project re-reads the lockfile after applying.
    assert project.lock.helm_charts["traefik"].version == "34.5.0"  # type: ignore[attr-defined]

    changelog = (lockfile.parent / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Lockfile changelog\n")
    assert (
        "## 2025-04-01: kubernetes-helm (maximum Kubernetes version, kind node image and Helm charts)"
        in changelog
    )
    assert "| `helm_charts.traefik` | 34.4.1 | 34.5.0 | 2025-03-20 | minor |" in changelog
    assert changelog.rstrip().endswith("Stages to re-apply: 02-infrastructure, 04-kubernetes-ingress.")

    body = report.read_text()
    assert (
        "| `helm_charts.traefik` | 34.4.1 | 34.5.0 | 2025-03-20 | minor | newer 35.0.0 needs policy major |"
        in body
    )
    assert "Stages that re-render and re-apply: `02-infrastructure`, `04-kubernetes-ingress`." in body

    # A second bump the same quarter finds nothing more and leaves both files alone.
    again = run_bump(project, group=None, apply=True, today=Q2, registries=registries)  # type: ignore[arg-type]
    assert again.splitlines()[-1] == "nothing to change"
    assert (lockfile.parent / "CHANGELOG.md").read_text() == changelog


def test_next_entry_is_appended_after_the_previous_one(fake: FakeRegistry, project: object) -> None:
    registries = serve_lockfile(fake, project.lock, NEWER)  # type: ignore[attr-defined]
    run_bump(project, group=None, apply=True, today=Q2, registries=registries)  # type: ignore[arg-type]
    run_bump(project, group="providers", apply=True, today=date(2025, 7, 1), registries=registries)  # type: ignore[arg-type]
    changelog = (project.lockfile_path.parent / "CHANGELOG.md").read_text()  # type: ignore[attr-defined]
    first, second = changelog.index("## 2025-04-01"), changelog.index("## 2025-07-01: providers")
    assert first < second
    assert changelog.count("# Lockfile changelog") == 1


def test_failed_lookup_leaves_lockfile_and_changelog_untouched(fake: FakeRegistry, project: object) -> None:
    lockfile = project.lockfile_path  # type: ignore[attr-defined]
    before = lockfile.read_bytes()
    registries = serve_lockfile(fake, project.lock, NEWER)  # type: ignore[attr-defined]
    fake.add("/helm/grafana.github.io/helm-charts/index.yaml", lambda _s: (500, {}, b"down"))
    with pytest.raises(LookupFailedError) as err:
        run_bump(project, group=None, apply=True, today=Q2, registries=registries)  # type: ignore[arg-type]
    message = str(err.value).splitlines()
    assert message[0].startswith("helm_charts.loki: 127.0.0.1:")
    assert (
        "HTTP 500 from /helm/grafana.github.io/helm-charts/index.yaml after 2 tries; retry later"
        in message[0]
    )
    assert message[-1] == "bump: 2 lookup(s) failed; nothing was written"  # loki and promtail share the index
    assert lockfile.read_bytes() == before
    assert not (lockfile.parent / "CHANGELOG.md").exists()


def test_lockfile_edited_during_the_bump_is_refused(fake: FakeRegistry, project: object) -> None:
    from stagegraph.errors import LockfileError
    from stagegraph.pins.bump import apply_bump

    lock = project.lock  # type: ignore[attr-defined]
    lockfile = project.lockfile_path  # type: ignore[attr-defined]
    plan = plan_bump(lock, resolve_group(None, Q2), Sources(serve_lockfile(fake, lock, NEWER)))
    lockfile.write_text(lockfile.read_text().replace('version: "34.4.1"', 'version: "34.4.2"'))
    edited = lockfile.read_bytes()
    with pytest.raises(
        LockfileError, match=r"helm_charts.traefik.version: is 34.4.2 now, the bump expected 34.4.1"
    ):
        apply_bump(plan, lockfile, lockfile.parent / "CHANGELOG.md", Q2, [], "lockfiles/versions.yaml")
    assert lockfile.read_bytes() == edited


def test_stages_using() -> None:
    assert stages_using(BUILTIN_STAGES, ["helm_charts.traefik", "kubernetes.kind_node_image"]) == [
        "02-infrastructure",
        "04-kubernetes-ingress",
    ]
    # Cloud clusters run at the lockfile's maximum unless the config names a version.
    assert stages_using(BUILTIN_STAGES, ["kubernetes.max_version"]) == ["02-infrastructure"]
    assert len(stages_using(BUILTIN_STAGES, ["terraform"])) == len(BUILTIN_STAGES)


def test_only_the_stages_that_use_a_changed_pin_go_stale(fake: FakeRegistry, project: object) -> None:
    """Render and write every default stage, bump, render again: only 02 and 04 are stale."""
    from stagegraph.render import is_current, render_stage, write_stage

    p = project
    config, out_root = p.config, p.root / "stages"  # type: ignore[attr-defined]
    before = {}
    for stage in p.graph.stages:  # type: ignore[attr-defined]
        rendered = render_stage(stage, config, p.lock, p.lockfile_name)  # type: ignore[attr-defined]
        write_stage(out_root, rendered)
        before[stage.name] = rendered
    registries = serve_lockfile(fake, p.lock, NEWER)  # type: ignore[attr-defined]
    run_bump(p, group=None, apply=True, today=Q2, registries=registries)  # type: ignore[arg-type]
    fresh_lock = load_lockfile(p.lockfile_path)  # type: ignore[attr-defined]
    stale, changed_files = [], []
    for stage in p.graph.stages:  # type: ignore[attr-defined]
        rendered = render_stage(stage, config, fresh_lock, p.lockfile_name)  # type: ignore[attr-defined]
        if not is_current(out_root / rendered.directory, rendered.digest):
            stale.append(stage.name)
        if rendered.files != before[stage.name].files:
            changed_files.append(stage.name)
    assert stale == ["02-infrastructure", "04-kubernetes-ingress"]
    assert changed_files == stale
    assert stale == stages_using(
        p.graph, ["kubernetes.kind_node_image", "helm_charts.traefik", "helm_charts.metallb"]
    )  # type: ignore[attr-defined]


def test_bump_action_parses_doit_parameters(fake: FakeRegistry, project: object) -> None:
    from stagegraph.pins.errors import PinsArgumentError

    with pytest.raises(PinsArgumentError, match=r"--date '2025-13-01': not a date; write it as YYYY-MM-DD"):
        bump_action(project, group="", apply=False, date="2025-13-01", report="")  # type: ignore[arg-type]
    with pytest.raises(PinsArgumentError, match="--group 'nope'"):
        bump_action(project, group="nope", apply=False, date="2025-04-01", report="")  # type: ignore[arg-type]
    assert parse_day("2025-10-01") == date(2025, 10, 1)


def test_a_pin_dropped_upstream_is_flagged_in_the_bump(fake: FakeRegistry) -> None:
    lock = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
    registries = serve_lockfile(fake, lock, NEWER, drop=("helm_charts.minio",))
    plan = plan_bump(lock, resolve_group("helm_charts", Q2), Sources(registries))
    minio = next(p for p in plan.proposals if p.key == "helm_charts.minio")
    assert minio.proposed is None
    assert minio.note == "pinned version is gone upstream (see `doit verify_pins`)"
