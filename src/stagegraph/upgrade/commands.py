"""The doit commands of this package: upgrade, restore, snapshots, backup, migrations.

Each returns the text to print; `stagegraph.tasks` prints it (library code never prints).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagegraph.errors import StagegraphError

if TYPE_CHECKING:
    from stagegraph.tasks import Session

UPGRADE_PARAMS: list[dict[str, Any]] = [
    {
        "name": "decide",
        "long": "decide",
        "default": [],
        "type": list,
        "help": "answer a step's question, NAME:VALUE (repeatable); docs/upgrades.md lists them",
    },
    {
        "name": "from_version",
        "long": "from",
        "default": "",
        "help": "the Nebari release that wrote the config, when it has no nebari_version",
    },
    {
        "name": "confirm",
        "long": "confirm",
        "default": [],
        "type": list,
        "help": "record that the manual upgrade action ID was done (repeatable)",
    },
    {
        "name": "show",
        "long": "list",
        "type": bool,
        "default": False,
        "help": "list the upgrade's deploy actions and what became of them",
    },
]
RESTORE_PARAMS: list[dict[str, Any]] = [
    {"name": "snapshot", "long": "snapshot", "default": "", "help": "snapshot id (default: the newest)"},
]
BACKUP_PARAMS: list[dict[str, Any]] = [
    {
        "name": "now",
        "long": "now",
        "type": bool,
        "default": False,
        "help": "also start one backup Job right away (from the CronJob)",
    },
    {
        "name": "restore",
        "long": "restore",
        "default": "",
        "help": "render the Job that restores backup ID (the Job name that took it, or latest) and print the steps",
    },
]


def upgrade(s: Session, decide: Sequence[str], from_version: str, confirm: Sequence[str], show: bool) -> str:
    from stagegraph.upgrade import deploy_actions
    from stagegraph.upgrade.run import parse_decisions, upgrade_file

    project = s.project
    state_dir = project.state_dir
    if confirm:
        done = [deploy_actions.confirm(state_dir, action_id) for action_id in confirm]
        return "\n".join(f"upgrade action {a.id}: recorded as done" for a in done)
    if show:
        return format_actions(deploy_actions.load(state_dir))
    from stagegraph.projectlock import hold_for_process

    # Never rewrite the config under a running deploy. Only the lock: the folder's identity
    # check reads the config, which is in an older format until this command is done.
    hold_for_process(project.state_dir, "upgrade")
    result = upgrade_file(
        project.config_path, parse_decisions(list(decide)), from_version, project.config_name
    )
    if not result.steps and not result.changed:
        return f"{project.config_name}: already in the {result.finish} format; nothing to upgrade"
    lines = [result.diff.rstrip("\n")] if result.diff else []
    lines.append(
        f"upgraded {project.config_name} from {result.start} to {result.finish} "
        f"({len(result.steps)} steps: {', '.join(result.steps)}); the old file is {result.backup.name if result.backup else '-'}"
    )
    lines.extend(f"wrote {path.name}" for path in result.files)
    lines.extend(f"note: {note}" for note in result.notes)
    if result.actions:
        deploy_actions.add(state_dir, result.actions)
        lines.append(f"{len(result.actions)} deploy actions recorded for the next `doit deploy`:")
        lines.append(format_actions(result.actions))
    return "\n".join(lines)


def format_actions(actions: Sequence[Any]) -> str:
    if not actions:
        return "no upgrade actions"
    rows = []
    for a in actions:
        done = f" ({a.note}, {a.finished_at})" if a.status != "pending" else ""
        rows.append(f"  {a.id}: {a.when} {a.stage}, {a.kind}, {a.status}{done}: {a.description}")
    return "\n".join(rows)


def restore(s: Session, stages: Sequence[str], snapshot: str) -> str:
    from stagegraph.snapshots import restore_stage

    # doit hands everything after the stage name over as positional: accept the option there too.
    stages = list(stages)
    for i, arg in enumerate(stages):
        if arg.startswith("--snapshot="):
            snapshot = arg.split("=", 1)[1]
            del stages[i]
            break
        if arg == "--snapshot" and i + 1 < len(stages):
            snapshot = stages[i + 1]
            del stages[i : i + 2]
            break
    if len(stages) != 1:
        raise StagegraphError(
            "name one stage: doit restore STAGE [--snapshot ID] (`doit snapshots` lists them)"
        )
    s.hold_lock("restore")
    project = s.project
    stage = s.graph[stages[0]]
    chosen, undo = restore_stage(
        project.state_dir,
        stage.name,
        project.stage_dir(stage),
        snapshot or None,
        keep=project.config.stagegraph.snapshots.keep,
    )
    undo_note = f"; what it replaced is snapshot {undo.id}" if undo else ""
    return (
        f"{stage.name}: state and record restored to snapshot {chosen.id} ({chosen.reason}, "
        f"{chosen.taken_at}){undo_note}; `doit status` shows what the next deploy will do"
    )


def snapshots(s: Session) -> str:
    from stagegraph.snapshots import list_snapshots

    lines = []
    for name in s.graph.names:
        for snap in list_snapshots(s.project.state_dir, name):
            state = ", ".join(snap.state_files) or "no state"
            lines.append(
                f"{name}  {snap.id}  {snap.reason}  ({state}; record: {'yes' if snap.had_record else 'no'})"
            )
    return "\n".join(lines) or "no snapshots yet (one is taken before each apply)"


def migrations(s: Session) -> str:
    """Each service's phased migration: the phase, where each version runs, notes for users."""
    from stagegraph.lockfile import ChartPin
    from stagegraph.migrations import placements

    project = s.project
    migration = project.config.jupyterhub.next_major
    lines = [f"jupyterhub: phase {migration.phase}"]
    for place in placements("jupyterhub", "jupyterhub", "jupyterhub_next", migration):
        pin = project.lock.pin(
            f"helm_charts.{place.chart_pin}", file=project.lockfile_name, user="jupyterhub"
        )
        version = pin.version if isinstance(pin, ChartPin) else "?"
        lines.append(f"  {place.route:<6} {place.role} version: release {place.release}, chart {version}")
    from stagegraph.migrations import phase_notes

    lines.extend(f"  note: {note}" for note in phase_notes("JupyterHub", migration))
    following = {"none": "beside", "beside": "switched", "switched": "retired"}.get(migration.phase)
    if following:
        lines.append(f"  next: set jupyterhub.next_major.phase: {following} and deploy")
    return "\n".join(lines)


def backup(s: Session, now: bool, restore: str = "") -> str:
    """Render the backup objects; against a cluster, apply them (and start a run with --now).

    --restore ID renders the restore Job instead and prints the steps that run it.
    """
    from datetime import UTC, datetime

    from stagegraph.atomic import write_atomic
    from stagegraph.backup import job_now, platform_of, render_backup, to_yaml

    project = s.project
    config = project.config
    namespace = config.namespace
    keycloak = project.records.get("05-kubernetes-keycloak")
    url = keycloak.outputs.get("internal_url") if keycloak else None
    from stagegraph.immutable import recorded

    # What the cluster runs, not what the config asks for next (see platform_of).
    running = {path: value for path, (value, _stage) in recorded(project.records.all(), config).items()}
    platform = platform_of(config, project.lock, project.lockfile_name, str(url) if url else None, running)
    settings = config.stagegraph.backup
    # Next to the config, not among the stage directories: it is no stage of the graph.
    folder = project.config_path.parent / "backup"
    if restore:
        return _restore(project.root, folder, settings, platform, restore)
    objects = render_backup(settings, platform)
    target = folder / "backup.yaml"
    changed = write_atomic(target, to_yaml(objects))
    where = target.relative_to(project.root) if target.is_relative_to(project.root) else target
    lines = [
        f"{'wrote' if changed else 'unchanged:'} {where} ({len(objects)} objects; `kubectl apply -f` deploys it by hand)"
    ]
    if config.provider == "sandbox":
        lines.append(
            "sandbox: not applied (no cluster); the CronJob would run on schedule "
            + config.stagegraph.backup.schedule
        )
        return "\n".join(lines)
    infra = project.records.get("02-infrastructure")
    kubeconfig = infra.outputs.get("kubeconfig_path") if infra else None
    if not kubeconfig:
        raise StagegraphError("doit backup needs the cluster: deploy 02-infrastructure first")
    from stagegraph.kube.apply import Resolver, apply_manifest
    from stagegraph.kube.client import KubeTarget, connect

    with connect(KubeTarget(str(kubeconfig), infra.outputs.get("kube_context") if infra else None)) as client:
        resolver = Resolver(client)
        for obj in objects:
            applied = apply_manifest(client, resolver, obj, str(where))
            lines.append(f"{applied.ref.describe()}: {applied.action}")
        if now:
            name = f"nebari-backup-manual-{datetime.now(UTC):%Y%m%d%H%M%S}"
            job = job_now(objects[-1], name)
            client.request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", body=job)
            lines.append(
                f"started Job {namespace}/{name}; follow it with `kubectl -n {namespace} logs -f job/{name} "
                f"--all-containers`; restore with `doit backup --restore {name}`"
            )
    return "\n".join(lines)


def _restore(root: Path, folder: Path, settings: Any, platform: Any, backup_id: str) -> str:
    """Write backup/restore-<ID>.yaml and say how to run it (never applied by stagegraph)."""
    from stagegraph.atomic import write_atomic
    from stagegraph.backup import to_yaml
    from stagegraph.backup_restore import check_id, render_restore, restore_steps

    target = folder / f"restore-{check_id(backup_id)}.yaml"
    write_atomic(target, to_yaml(render_restore(settings, platform, backup_id)))
    where = target.relative_to(root) if target.is_relative_to(root) else target
    steps = restore_steps(settings, platform, backup_id, str(where))
    return "\n".join(
        [
            f"wrote {where}: the Job that restores backup {backup_id} (not applied: it overwrites "
            "the databases, the bucket and the volumes). Run, in order:",
            *(f"  {step}" for step in steps),
        ]
    )
