"""What each doit task does: the actions behind `stagegraph.tasks`.

Each action takes the per-process `Session` (project, graph, runtime) and its doit params.
Library calls raise StagegraphError; `tasks.failing_cleanly` turns those into one line.
Heavy imports (Terraform, Kubernetes, SOPS, HTTP) happen inside the actions that need them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagegraph.errors import StagegraphError
from stagegraph.graph import StageGraph

if TYPE_CHECKING:
    from stagegraph.tasks import Session


def do_validate(s: Session) -> None:
    if s.load_error is not None:
        raise s.load_error
    project = s.project
    do_check_plugin_settings(s)
    do_warn_plaintext_secrets(s)
    from stagegraph.secretvalues import check_secret_files

    check_secret_files(project.config, project.root, project.config_name)
    for stage in s.graph.stages:
        for key in stage.pins:
            project.lock.pin(key, file=project.lockfile_name, user=f"stage {stage.name}")
    from stagegraph.stages.cloud.versions import check_config_version

    max_version = project.lock.pin("kubernetes.max_version", file=project.lockfile_name)
    check_config_version(
        project.config, getattr(max_version, "version", ""), project.config_name, project.lockfile_name
    )
    print(
        f"{project.config_name}: valid (provider {project.config.provider}, "
        f"{len(s.graph.stages)} stages, {len(project.lock.keys())} pins in {project.lockfile_name})"
    )
    for line in _overridden_lines(s):
        print(line)


def _overridden_lines(s: Session) -> list[str]:
    """One line per pin this deployment overrides, naming the file (lockfiles/overrides*.yaml)."""
    overridden = s.project.overridden_pins
    users: dict[str, list[str]] = {}
    for stage in s.graph.stages:
        for key in stage.pins:
            users.setdefault(key, []).append(stage.name)
    return [
        f"pin {key} overridden in {where} (used by {', '.join(users.get(key, [])) or 'no stage'})"
        for key, where in sorted(overridden.items())
    ]


def do_check(s: Session, charts: str, offline: bool, only: Sequence[str]) -> None:
    from stagegraph.checks.options import run_check_command
    from stagegraph.errors import CheckFailedError

    if s.load_error is not None:
        raise s.load_error
    report = run_check_command(s.project, s.graph, charts=charts, offline=offline, only=only)
    for line in report.lines():
        print(line)
    if report.problems:
        raise CheckFailedError(f"{s.project.config_name}: doit check: {report.summary()}")
    print(f"{s.project.config_name}: doit check: {report.summary()}")


def do_render(s: Session, name: str) -> None:
    from stagegraph.render import hand_edits, render_stage, write_stage

    rt = s.runtime()
    s.hold_lock(s.command_name())
    project = s.project
    stage = s.graph[name]
    rendered = render_stage(stage, project.config, project.lock, project.lockfile_name)
    edited = hand_edits(project.stage_dir(stage))
    result = write_stage(project.output_root, rendered)
    changed = ", ".join(result.written) or "no file changed"
    removed = f"; removed {', '.join(result.removed)}" if result.removed else ""
    over = f"; overwrote hand edits of {', '.join(edited)}" if edited else ""
    rt.console.line(
        name, f"rendered {project.output_root.name}/{rendered.directory}: {changed}{removed}{over}"
    )


def do_render_ci(s: Session) -> None:
    """Write (or remove) the CI workflow of `ci_cd`; see stagegraph.cicd."""
    from stagegraph.cicd import files_for, write_workflows

    rt = s.runtime()
    s.hold_lock(s.command_name())
    project = s.project
    for name in write_workflows(project.root, files_for(project), project.environment):
        rt.console.line("ci_cd", f"wrote {name}")


def do_report_disk_render(s: Session, name: str) -> None:
    from stagegraph.status import differs_from_fresh_render

    rt = s.runtime()
    stage = s.graph[name]
    diff = differs_from_fresh_render(s.project, stage)
    if diff:
        rt.console.line(
            name, f"--disable-render: on-disk files differ from a fresh render: {', '.join(diff)}"
        )


def do_apply(s: Session, name: str) -> None:
    from stagegraph.deploy import apply_stage

    apply_stage(s.runtime(), name)


def do_deploy_done(s: Session, stop_at: str) -> None:
    if stop_at and stop_at not in s.graph:
        from stagegraph.errors import UnknownStageError

        raise UnknownStageError(stop_at, s.graph.names)
    # The run's one summary line is printed at exit (see Session), failed runs included.


def do_plan(s: Session, name: str) -> None:
    from stagegraph.planning import plan_stage

    plan_stage(s.runtime(), name)


def do_apply_plan(s: Session, name: str) -> None:
    from stagegraph.planning import apply_plan

    apply_plan(s.runtime(), name)


def do_destroy(s: Session, name: str) -> None:
    from stagegraph.commands.engine import options
    from stagegraph.destroy import destroy_stage

    rt = s.runtime()
    s.hold_lock("destroy")
    destroy_stage(rt, name, delete_data=bool(options(s).destroy["delete_data"]))


def do_destroy_orphans(s: Session, stage: Sequence[str]) -> None:
    from stagegraph.orphans import destroy_orphans

    if s.load_error is not None:
        raise s.load_error
    rt = s.runtime()
    s.hold_lock(s.command_name())  # also runs first in a whole `doit destroy`
    done = destroy_orphans(rt, s.graph.names, stage)
    if not done and s.command_name() == "destroy_orphans":
        print("no stage left the graph: nothing to destroy")


def do_status(s: Session, all: bool = False) -> None:
    """One row per stage: what the next `doit deploy` does with it, and why; orphans too."""
    from stagegraph.orphans import TASK, find_orphans
    from stagegraph.status import predict

    if all:
        from stagegraph.envstatus import folder_status

        print(folder_status(s.project.root, s.root))
        return
    s.check_config()
    s.project.check_identity(record=False)
    from stagegraph.statelocation import check_location

    check_location(s.project)  # records read elsewhere would show every stage as never applied
    states = predict(s.project)
    rows = []
    for name in s.graph.names:
        st = states[name]
        when = f"{st.applied_at:%Y-%m-%d %H:%M:%S}" if st.applied_at else "-"
        rows.append((name, st.state, when, st.note))
    for orphan in find_orphans(s.project, s.graph.names):
        when = f"{orphan.record.applied_at:%Y-%m-%d %H:%M:%S}" if orphan.record.applied_at else "-"
        by = f"plugin {orphan.plugin}" if orphan.plugin else "its plugin"
        note = f"not in the graph ({by} disabled or uninstalled); `doit {TASK}` destroys it"
        rows.append((orphan.stage, "orphaned", when, note))
    _, unreadable = s.project.records.scan()
    for name, problem in sorted(unreadable.items()):
        if name not in s.graph:  # a stage in the graph shows its own problem above
            rows.append((name, "unknown", "-", str(problem)))
    width = max(len(r[0]) for r in rows)
    print(f"{'stage':<{width}}  {'state':<13}  {'last applied (UTC)':<19}  note")
    for name, state, when, note in rows:
        print(f"{name:<{width}}  {state:<13}  {when:<19}  {note}".rstrip())
    will = [n for n in s.graph.names if states[n].will_apply]
    counts: dict[str, int] = {}
    for st in states.values():
        counts[st.state] = counts.get(st.state, 0) + 1
    totals = ", ".join(f"{n} {state}" for state, n in counts.items())
    print(f"status: {totals}; the next deploy applies {len(will)} stage{'s' if len(will) != 1 else ''}")


def do_why(s: Session, stages: Sequence[str]) -> None:
    from stagegraph.status import why

    s.check_config()
    s.project.check_identity(record=False)
    from stagegraph.statelocation import check_location

    check_location(s.project)
    if not stages:
        raise StagegraphError("name a stage: doit why STAGE (see `doit list`)")
    for name in stages:
        s.graph[name]  # unknown stage: error listing the known ones
        print("\n".join(why(s.project, name)))


def do_forget_state(s: Session, stages: Sequence[str]) -> None:
    from stagegraph.tfstate import forget_state

    if s.load_error is not None:
        raise s.load_error
    if not stages:
        raise StagegraphError("name a stage: doit forget_state STAGE (see `doit status`)")
    s.hold_lock("forget_state")
    for name in stages:
        stage = s.graph[name]  # unknown stage: error listing the known ones
        print(f"{name}: {forget_state(s.project.records, name, s.project.stage_dir(stage))}")


def do_graph(s: Session, svg: str, dot: str) -> None:
    from stagegraph.graphview import NodeInfo, direct_only, render_dot, render_svg
    from stagegraph.info import format_info

    s.check_config()
    overridden = s.project.overridden_pins
    nodes = [
        NodeInfo(
            name=st.name,
            description=st.description,
            depends_on=st.depends_on,
            config_sections=st.config_sections,
            pins=st.pins,
            kind=st.kind,
            source=st.source,
        )
        for st in s.graph.stages
    ]
    states = None
    if s.project.records.all():
        from stagegraph.status import predict

        states = {name: st.state for name, st in predict(s.project).items()}
    marked = [
        replace(n, pins=tuple(f"{p} (overridden)" if p in overridden else p for p in n.pins)) for n in nodes
    ]
    print(format_info(marked, states))
    if overridden:
        print()
        print("\n".join(_overridden_lines(s)))
    # The picture draws direct dependencies only; the text above lists every one.
    drawn = direct_only(marked)
    if svg:
        Path(svg).write_text(render_svg(drawn, states=states), encoding="utf-8")
        print(f"wrote {svg}")
    if dot:
        Path(dot).write_text(render_dot(drawn, states=states), encoding="utf-8")
        print(f"wrote {dot}")


def do_plugins(s: Session) -> None:
    from stagegraph.plugins.tasks import describe_plugins, format_plugins

    print(format_plugins(describe_plugins(s.project, s.graph)))
    if s.load_error is not None:
        raise s.load_error


def do_check_plugin_settings(s: Session) -> None:
    """Each enabled plugin's section under stagegraph.plugins.settings passes its model."""
    from stagegraph.plugins.tasks import check_settings

    if s.load_error is not None:
        raise s.load_error
    check_settings(s.project)


def section_owners(graph: StageGraph) -> dict[str, str]:
    """Top-level config key -> the first stage (in runtime order) that reads it."""
    owners: dict[str, str] = {}
    for stage in graph.stages:
        for path in stage.config_sections:
            owners.setdefault(path.split(".")[0], stage.name)
    return owners


def do_init(s: Session, provider: str, project_name: str, domain: str, auth: str, gcp_project: str) -> None:
    from stagegraph.initconfig import render_init_config, write_new_config
    from stagegraph.sops.init import ROOT_PASSWORD_FILE, ROOT_PASSWORD_KEY, init_root_password_secret

    if s.project.config_path.exists():  # refuse before generating or encrypting anything
        write_new_config(s.project.config_path, "")
    notes: list[str] = []
    # The config first (validated as it is rendered): a bad choice stops here, before any
    # key, rule or secret exists. The root password then goes straight into an encrypted
    # file; the config only refers to it.
    ref = {"sops": ROOT_PASSWORD_FILE, "key": ROOT_PASSWORD_KEY}
    text = render_init_config(
        provider=provider,
        project_name=project_name,
        domain=domain,
        auth_type=auth,
        section_owner=section_owners(s.graph),
        root_password_ref=ref,
        gcp_project=gcp_project or None,
    )
    ref = init_root_password_secret(s.project.root, notes=notes)
    write_new_config(s.project.config_path, text)
    for note in notes:
        print(note)
    print(
        f"wrote {s.project.config_name} (provider {provider}); the Keycloak root password is encrypted in {ref['sops']}"
    )
    if "<your " in text:
        name = s.project.config_name
        print(f"now fill in the <your ...> placeholders of {name}; `doit validate` refuses them until then")


def do_schema(s: Session) -> None:
    from stagegraph.configfile import export_json_schema

    target = s.root / "schema" / "nebari-config.schema.json"
    from stagegraph.atomic import write_atomic

    changed = write_atomic(target, export_json_schema())
    print(f"{'wrote' if changed else 'unchanged:'} {target.relative_to(s.root)}")


def do_provider_schemas(s: Session, force: bool, checkout: str) -> None:
    from stagegraph.tfschema.tasks import provider_schemas_action

    if s.load_error is not None:
        raise s.load_error
    print(provider_schemas_action(s.project, force=force, checkout=checkout))


def do_cloud_catalog(s: Session) -> None:
    from datetime import date

    from stagegraph.cloudcatalog import refresh_action
    from stagegraph.errors import LockfileError
    from stagegraph.schema.cloud_catalog import catalog_path

    path = catalog_path()
    if not path.resolve().is_relative_to(s.root.resolve()):
        # An installed stagegraph's data belongs to its release, not to this folder.
        raise LockfileError(
            f"{path}: not part of this folder; run `doit cloud_catalog` in a stagegraph source "
            "checkout (installed with `pip install -e .`)"
        )
    print(refresh_action(path, date.today().isoformat()))


def do_bump(s: Session, group: str, apply: bool, date: str, report: str) -> None:
    from stagegraph.pins.tasks import bump_action

    if s.load_error is not None:
        raise s.load_error
    print(bump_action(s.project, group=group, apply=apply, date=date, report=report))


def do_verify_pins(s: Session, group: str) -> None:
    from stagegraph.pins.tasks import verify_action

    if s.load_error is not None:
        raise s.load_error
    print(verify_action(s.project, group=group))


def do_verify_before_deploy(s: Session) -> None:
    """With `stagegraph.verify_pins_before_deploy: true`, refuse to deploy vanished pins."""
    if s.project.config.stagegraph.verify_pins_before_deploy:
        do_verify_pins(s, "")


def do_bench(s: Session, quick: bool) -> None:
    from stagegraph.bench import main

    main(["--repo", str(s.root), *(["--quick"] if quick else [])])


def do_warn_plaintext_secrets(s: Session) -> None:
    from stagegraph.sops.plaintext import plaintext_warnings

    for line in plaintext_warnings(s.project.config, s.project.config_name):
        print(line)  # already reads `warning: <file>: <field>: ...`


def do_check_secrets_before_apply(s: Session, stages: list[str]) -> None:
    """Decrypt every secret the run's stages read before any stage applies (bad key: no apply)."""
    from stagegraph.sops.preflight import check_stage_secrets

    check_stage_secrets(s.project, stages)


def do_secrets_command(s: Session, run: Callable[..., str], **params: Any) -> None:
    if s.load_error is not None:
        raise s.load_error
    print(run(s.project, **params))


def do_preflight(s: Session, stages: list[str]) -> None:
    """Lock, then the checks that must pass before any stage applies.

    A failure here applies nothing; the run summary says so (`preflight` failed, every
    stage of the run not run), so a stale summary of an earlier run is never left behind.
    """
    s.check_config()  # an invalid config is the only thing said: no summary of a run
    s.hold_lock(s.command_name())
    try:
        if s.command_name() != "destroy":
            do_check_deployable(s)
        else:  # every stage it will destroy, before it destroys any
            from stagegraph.commands.engine import options
            from stagegraph.destroy import check_destroyable

            check_destroyable(s.project, options(s).destroying)
        if s.command_name() not in ("destroy", "plan"):
            # Applying with a stage's resources left behind unnoticed is what this stops.
            from stagegraph.orphans import refuse_orphans

            refuse_orphans(s.project, s.graph.names)
        do_check_plugin_settings(s)
        do_warn_plaintext_secrets(s)
        do_check_secrets_before_apply(s, stages)
        do_verify_before_deploy(s)
    except StagegraphError as exc:
        summary = s.runtime().summary
        summary.add("preflight", "failed", 0.0, str(exc).splitlines()[0])
        summary.mark_not_run(stages, reason="preflight failed")
        raise


def do_check_deployable(s: Session) -> None:
    """prevent_deploy, and no immutable field changed since it was applied (before any Terraform)."""
    from stagegraph.cliargs import task_options
    from stagegraph.immutable import check_unchanged
    from stagegraph.tasks import DEPLOY_PARAMS

    project = s.project
    if project.config.prevent_deploy:
        raise StagegraphError(
            f"{project.config_name}: prevent_deploy: true (an upgrade set it: back up your data as its "
            "notes say); remove the key to deploy"
        )
    allowed = task_options(s.argv, "deploy", DEPLOY_PARAMS)["allow_change"]
    records, _ = project.records.scan()
    for change in check_unchanged(project.config, records, allowed, project.config_name):
        print(f"warning: {project.config_name}: {change} (allowed by --allow-change)")
