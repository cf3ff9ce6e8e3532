"""`doit bump`: propose newer pins for one group, show them, and apply them on request.

Planning asks the registries about every pin of the group first; only when every lookup
succeeded is anything written, and then the lockfile (atomically, comments intact) before
the changelog entry. A failed lookup, a registry that is offline or rate-limited, leaves
both files exactly as they were.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from pydantic import ValidationError

from stagegraph.errors import LockfileError
from stagegraph.lockfile import Lockfile, Pin
from stagegraph.pins.cadence import BumpGroup, quarter
from stagegraph.pins.registries import Release
from stagegraph.pins.sources import Sources, kind_of, pins_of, value_field, value_of
from stagegraph.pins.versions import Policy, allowed, choose, parse_tag

KIND_NODE = "kubernetes.kind_node_image"
MAX_KUBERNETES = "kubernetes.max_version"


@dataclass(frozen=True)
class Proposal:
    key: str
    field: str
    current: str
    proposed: str | None
    released: date | None
    policy: Policy
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.proposed is not None and self.proposed != self.current

    @property
    def path(self) -> tuple[str, ...]:
        """Where the value sits in the YAML: `helm_charts.traefik` -> (helm_charts, traefik, version)."""
        return (*self.key.split("."), self.field)


@dataclass(frozen=True)
class BumpPlan:
    group: BumpGroup
    proposals: tuple[Proposal, ...]

    @property
    def changes(self) -> tuple[Proposal, ...]:
        return tuple(p for p in self.proposals if p.changed)

    @property
    def changed_keys(self) -> list[str]:
        return [p.key for p in self.changes]


def plan_bump(lock: Lockfile, group: BumpGroup, sources: Sources) -> BumpPlan:
    """Ask upstream about every pin of `group` and pick what each policy allows."""
    pins = dict(pins_of(lock, group.sections))
    looked_up = [k for k, p in pins.items() if p.policy != "hold" and kind_of(k, p) != "derived"]
    releases = sources.run_all(looked_up, lambda k: sources.releases(k, pins[k]), "bump")
    proposals = {k: _propose(k, pins[k], releases.get(k)) for k in pins if k != MAX_KUBERNETES}
    undated = [k for k, p in proposals.items() if p.changed and p.released is None]
    dates = sources.run_all(
        undated, lambda k: sources.released(k, pins[k], proposals[k].proposed or ""), "bump"
    )
    for k, day in dates.items():
        proposals[k] = _with_date(proposals[k], day)
    if MAX_KUBERNETES in pins:
        # Sections are bumped whole, so the kind node image is in this plan too.
        proposals[MAX_KUBERNETES] = _max_kubernetes(lock, proposals[KIND_NODE])
    return BumpPlan(group, tuple(proposals[k] for k in pins))


def _with_date(p: Proposal, day: date | None) -> Proposal:
    return dataclasses.replace(p, released=day)


def _propose(key: str, pin: Pin, releases: list[Release] | None) -> Proposal:
    current, field, policy = value_of(pin), value_field(pin), pin.policy
    if policy == "hold":
        return Proposal(
            key, field, current, None, None, policy, f"held: {pin.hold_reason or 'no reason given'}"
        )
    if parse_tag(current) is None:
        return Proposal(key, field, current, None, None, policy, "not a version tag; bump it by hand")
    published = [r.version for r in releases or ()]
    choice = choose(current, published, policy)
    notes = []
    if current not in published:
        # Upstream dropped it (Bitnami-style retention): say so even when nothing is newer.
        notes.append("pinned version is gone upstream (see `doit verify_pins`)")
    if choice.latest and choice.latest != choice.proposed:
        notes.append(f"newer {choice.latest} needs policy {_needed(current, choice.latest)}")
    note = "; ".join(notes)
    if choice.proposed is None:
        return Proposal(key, field, current, None, None, policy, note or "up to date")
    day = next((r.released for r in releases or () if r.version == choice.proposed), None)
    return Proposal(key, field, current, choice.proposed, day, policy, note)


def _needed(current: str, newer: str) -> str:
    a, b = parse_tag(current), parse_tag(newer)
    if a is None or b is None:
        return "major"
    narrow: tuple[Policy, ...] = ("patch", "minor")
    return next((policy for policy in narrow if allowed(a, b, policy)), "major")


def _max_kubernetes(lock: Lockfile, kind_node: Proposal) -> Proposal:
    """The newest Kubernetes minor is the one of the kind node image the release tests with."""
    pin = lock.kubernetes.max_version
    current, policy = pin.version, pin.policy
    if policy == "hold":
        return Proposal(
            MAX_KUBERNETES,
            "version",
            current,
            None,
            None,
            policy,
            f"held: {pin.hold_reason or 'no reason given'}",
        )
    node = parse_tag(kind_node.proposed or kind_node.current)
    have = parse_tag(current)
    if node is None or have is None:
        return Proposal(MAX_KUBERNETES, "version", current, None, None, policy, "bump it by hand")
    target = f"{node.part(0)}.{node.part(1)}"
    wanted = parse_tag(target)
    assert wanted is not None
    if not allowed(have, wanted, policy):
        note = f"follows {KIND_NODE}" if wanted.release <= have.release else f"{target} needs policy major"
        return Proposal(MAX_KUBERNETES, "version", current, None, None, policy, note)
    return Proposal(
        MAX_KUBERNETES, "version", current, target, kind_node.released, policy, f"follows {KIND_NODE}"
    )


# --- reports -------------------------------------------------------------------------------


def _cells(p: Proposal) -> list[str]:
    released = p.released.isoformat() if p.released else "-"
    return [p.key, p.current, p.proposed if p.changed and p.proposed else "-", released, p.policy, p.note]


def format_table(plan: BumpPlan, stages: Sequence[str], day: date) -> str:
    """The plain-text table `doit bump` prints."""
    header = ["pin", "current", "proposed", "released", "policy", "note"]
    rows = [header, *(_cells(p) for p in plan.proposals)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = [
        f"bump {plan.group.name}: {plan.group.description} "
        f"(the group for {day.year} Q{quarter(day)} is chosen by date; --group overrides)",
    ]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
        lines[-1] = lines[-1].rstrip()
    count = len(plan.changes)
    lines.append(f"{count} pin(s) to change; stages to re-apply: {', '.join(stages) if stages else 'none'}")
    return "\n".join(lines)


def format_markdown(plan: BumpPlan, stages: Sequence[str], day: date, lockfile: str) -> str:
    """The same report as Markdown: the body of the quarterly pull request."""
    lines = [
        f"Quarterly pin bump for {day.year} Q{quarter(day)}: **{plan.group.name}** "
        f"({plan.group.description}), by `doit bump --apply`.",
        "",
        "| pin | current | proposed | released | policy | note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in plan.proposals:
        cells = _cells(p)
        cells[0] = f"`{cells[0]}`"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += [
        "",
        f"{len(plan.changes)} pin(s) changed in `{lockfile}`.",
        "",
        "Stages that re-render and re-apply: "
        + (", ".join(f"`{s}`" for s in stages) if stages else "none")
        + ".",
        "",
    ]
    return "\n".join(lines)


# --- applying ------------------------------------------------------------------------------


def apply_bump(
    plan: BumpPlan, lockfile_path: Path, changelog_path: Path, day: date, stages: Sequence[str], lockfile: str
) -> bool:
    """Write the changed pins and a changelog entry; False when there was nothing to change.

    Both new texts are computed (and the lockfile re-validated) before either file is
    touched; if the changelog cannot be written the lockfile is put back.
    """
    from stagegraph.atomic import write_atomic
    from stagegraph.pins.changelog import appended, entry
    from stagegraph.pins.rewrite import rewrite_values

    if not plan.changes:
        return False
    try:
        old = lockfile_path.read_text(encoding="utf-8")
        log = changelog_path.read_text(encoding="utf-8") if changelog_path.exists() else None
    except OSError as exc:
        raise LockfileError(f"{exc.filename}: cannot read: {exc.strerror}") from None
    new = rewrite_values(old, {p.path: (p.current, p.proposed or p.current) for p in plan.changes}, lockfile)
    _validate(new, lockfile)
    new_log = appended(log, entry(plan, day, stages))
    # Python pins are also the package's requirements: move pyproject.toml with the lockfile.
    project_file, project_new = _pyproject_update(plan, lockfile_path)
    try:
        write_atomic(lockfile_path, new)
    except OSError as exc:
        raise LockfileError(f"{lockfile}: cannot write: {exc.strerror}; the lockfile is unchanged") from None
    try:
        write_atomic(changelog_path, new_log)
        if project_file is not None:
            write_atomic(project_file, project_new)
    except OSError as exc:
        write_atomic(lockfile_path, old)
        if log is not None:
            write_atomic(changelog_path, log)
        raise LockfileError(
            f"{exc.filename or changelog_path}: cannot write: {exc.strerror}; the lockfile was restored, "
            "nothing changed"
        ) from None
    return True


def _pyproject_update(plan: BumpPlan, lockfile_path: Path) -> tuple[Path | None, str]:
    """stagegraph's pyproject.toml with the python pins of the plan, computed before any write."""
    from stagegraph.pins.pyproject import pyproject_of, rewrite_pins

    moves = {
        p.key.split(".", 1)[1]: (p.current, p.proposed)
        for p in plan.changes
        if p.key.startswith("python.") and p.proposed
    }
    path = pyproject_of(lockfile_path) if moves else None
    if path is None:
        return None, ""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LockfileError(f"{path}: cannot read: {exc.strerror}; nothing written") from None
    return path, rewrite_pins(text, moves, str(path))


def _validate(text: str, lockfile: str) -> None:
    """The rewritten text must still be a valid lockfile (it always should; this is a guard)."""
    try:
        Lockfile.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise LockfileError(
            f"{lockfile}: the bump would make the lockfile invalid ({exc}); nothing written"
        ) from None
