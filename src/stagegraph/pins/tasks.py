"""The `bump` and `verify_pins` commands, ready for the doit layer to wire.

`stagegraph.tasks` imports this module while creating tasks (for every doit command,
`doit list` included), so everything heavier than the parameter lists is imported inside
the functions. The functions return the text to print and raise `StagegraphError`
subclasses; the doit layer prints and fails.

Wiring (in `stagegraph.tasks`):

    {"actions": [(failing_cleanly(lambda group, apply, date, report:
        print(bump_action(s.project, group=group, apply=apply, date=date, report=report))), [])],
     "params": BUMP_PARAMS, "verbosity": 2}
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagegraph.errors import StagegraphError

if TYPE_CHECKING:
    from stagegraph.pins.registries import Registries
    from stagegraph.project import Project
    from stagegraph.stage import Stage

BUMP_PARAMS: list[dict[str, Any]] = [
    {
        "name": "group",
        "long": "group",
        "default": "",
        "type": str,
        "help": "bump this group instead of the quarter's: python, kubernetes-helm, providers, "
        "terraform-images, one lockfile section (helm_charts, images, ...) or all",
    },
    {
        "name": "apply",
        "long": "apply",
        "default": False,
        "type": bool,
        "help": "write the lockfile and a changelog entry (without it: dry run, show the table only)",
    },
    {
        "name": "date",
        "long": "date",
        "default": "",
        "type": str,
        "help": "choose the quarter's group as of this day, YYYY-MM-DD (default: today)",
    },
    {
        "name": "report",
        "long": "report",
        "default": "",
        "type": str,
        "help": "also write the report as Markdown to this file (the body of the quarterly pull request)",
    },
]
VERIFY_PARAMS: list[dict[str, Any]] = [
    {
        "name": "group",
        "long": "group",
        "default": "",
        "type": str,
        "help": "check only this lockfile section or rotation group (default: every chart, image and provider)",
    },
]


def parse_day(value: str) -> date:
    """`--date`; empty means today (the one clock read of the bump, kept out of pure code)."""
    from stagegraph.pins.errors import PinsArgumentError

    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PinsArgumentError(f"--date {value!r}: not a date; write it as YYYY-MM-DD") from None


def _stages(project: Project) -> tuple[tuple[Stage, ...], str]:
    """The project's stages (plugins included); the built-in ones if the config is broken."""
    try:
        return project.graph.stages, ""
    except StagegraphError as exc:
        from stagegraph.stages.builtin import BUILTIN_STAGES

        first = str(exc).splitlines()[0]
        return BUILTIN_STAGES, f"(config not loadable, stages listed are the built-in ones: {first})"


def run_bump(
    project: Project,
    *,
    group: str | None,
    apply: bool,
    today: date,
    registries: Registries | None = None,
    report: Path | None = None,
) -> str:
    """Plan a bump of `group` (None: the quarter's for `today`), show it, apply it if asked.

    Returns the table and what was done. With `report`, also writes the Markdown version
    (the pull request body). Nothing is written to the lockfile unless `apply` is true and
    every registry lookup succeeded.
    """
    from stagegraph.atomic import write_atomic
    from stagegraph.lockoverride import packaged_lockfile
    from stagegraph.pins.bump import apply_bump, format_markdown, format_table, plan_bump
    from stagegraph.pins.cadence import resolve_group
    from stagegraph.pins.sources import Sources
    from stagegraph.pins.usage import stages_using

    if apply and project.lockfile_path.resolve() == packaged_lockfile().resolve():
        raise StagegraphError(
            f"{project.lockfile_name}: these are the pins of the installed stagegraph; upgrade stagegraph "
            "for newer ones, or put the pins this deployment changes in lockfiles/overrides.yaml"
        )
    chosen = resolve_group(group, today)
    plan = plan_bump(project.lock, chosen, Sources(registries))
    stages, note = _stages(project)
    affected = stages_using(stages, plan.changed_keys)
    lines = [format_table(plan, affected, today)]
    if note:
        lines.append(note)
    if report is not None:
        try:
            write_atomic(report, format_markdown(plan, affected, today, project.lockfile_name))
        except OSError as exc:
            raise StagegraphError(f"--report {report}: cannot write: {exc.strerror}") from None
    changelog = project.lockfile_path.parent / "CHANGELOG.md"
    if not plan.changes:
        lines.append("nothing to change")
    elif apply:
        from stagegraph.lockoverride import sync_packaged_copy

        apply_bump(plan, project.lockfile_path, changelog, today, affected, project.lockfile_name)
        sync_packaged_copy(project.root, project.lockfile_path)
        # The Project caches the parsed lockfile; later tasks of this process must see the new one.
        project.__dict__.pop("_lock_and_overrides", None)
        lines.append(
            f"wrote {project.lockfile_name} and {_name(project, changelog)}; "
            f"`doit deploy` re-renders and re-applies: {', '.join(affected) or 'no stage'}"
        )
    else:
        lines.append("dry run: nothing written; `doit bump --apply` writes the lockfile and the changelog")
    return "\n".join(lines)


def run_verify(project: Project, registries: Registries | None = None, *, group: str | None = None) -> str:
    """Check every chart, image and provider pin upstream; raise `PinsMissingError` if any is gone."""
    from stagegraph.pins.cadence import resolve_group
    from stagegraph.pins.errors import PinsMissingError
    from stagegraph.pins.sources import Sources
    from stagegraph.pins.verify import format_verify, verify_pins

    sections = resolve_group(group, date.min).sections if group else None
    try:
        text = project.lockfile_path.read_text(encoding="utf-8")
    except OSError as exc:
        from stagegraph.errors import LockfileError

        raise LockfileError(f"{project.lockfile_name}: cannot read: {exc.strerror}") from None
    stages, _note = _stages(project)
    result = verify_pins(project.lock, stages, Sources(registries), text, project.lockfile_name, sections)
    out = format_verify(result, project.lockfile_name)
    if result.missing:
        raise PinsMissingError(out, len(result.missing))
    return out


def bump_action(project: Project, *, group: str, apply: bool, date: str, report: str) -> str:
    """`doit bump` with its raw doit parameters (strings and a flag)."""
    return run_bump(
        project,
        group=group or None,
        apply=apply,
        today=parse_day(date),
        report=Path(report) if report else None,
    )


def verify_action(project: Project, *, group: str) -> str:
    """`doit verify_pins` with its raw doit parameters."""
    return run_verify(project, group=group or None)


def _name(project: Project, path: Path) -> str:
    try:
        return str(path.relative_to(project.root))
    except ValueError:
        return str(path)
