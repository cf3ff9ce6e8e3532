"""Phased major-version migrations, for any service: where each version runs, and what to tell users.

The Nublado (Rubin Phalanx) way of replacing a service's major version without a flag day:
1. beside:   the next version runs beside the current one on an alternate route (/n3);
             users try it while / stays on the current version.
2. switched: the next version takes /, the previous one moves to another route (/n2).
3. retired:  the previous version is removed; only the next one runs, on /.
Each phase is one config change (`<service>.next_major.phase`) and one ordinary deploy, so
only the stages that render the service (and the login redirects) apply again.

A stage calls `placements()` to learn which releases to render and on which route, and
`phase_notes()` to tell users what the phase means. A plugin does the same with a
`MajorMigration` field in its own settings model.
"""

from __future__ import annotations

from dataclasses import dataclass

from stagegraph.schema.migration import MajorMigration

ROOT = "/"


@dataclass(frozen=True)
class Placement:
    """One release of the service in a phase: its name, chart pin, route and role."""

    release: str
    chart_pin: str
    route: str
    role: str  # "current" or "next"
    #: Prefix of the release's object names ("" keeps the chart's own names).
    prefix: str

    @property
    def at_root(self) -> bool:
        return self.route == ROOT

    def path(self, suffix: str) -> str:
        """`suffix` (starting with /) under this release's route: /hub/... or /n3/hub/..."""
        return suffix if self.at_root else f"{self.route}{suffix}"


def next_release(release: str, migration: MajorMigration) -> str:
    """The next version's release name: named after the route it first ran on (jupyterhub-n3)."""
    return f"{release}-{migration.next_route.strip('/')}"


def placements(release: str, current_pin: str, next_pin: str, migration: MajorMigration) -> list[Placement]:
    """The releases to render in the migration's phase; the first one serves /."""
    upcoming = next_release(release, migration)
    current_at = Placement(release, current_pin, ROOT, "current", "")
    next_at = Placement(upcoming, next_pin, ROOT, "next", upcoming)
    phase = migration.phase
    if phase == "none":
        return [current_at]
    if phase == "beside":
        return [current_at, Placement(upcoming, next_pin, migration.next_route, "next", upcoming)]
    if phase == "switched":
        return [next_at, Placement(release, current_pin, migration.previous_route, "current", "")]
    return [next_at]


def phase_notes(service: str, migration: MajorMigration) -> list[str]:
    """What users must hear before the deploy of this phase (empty when nothing changes)."""
    shared = (
        f"Both versions of {service} mount the same shared storage: a user must shut down their "
        "server on one route before starting one on the other, or two servers save the same open "
        "files every few minutes (reverting each other's changes, at worst corrupting the files)."
    )
    nxt, prev = migration.next_route, migration.previous_route
    if migration.phase == "beside":
        return [
            f"Announce {nxt}: the next major version of {service} runs there for testing; / stays on "
            "the current version.",
            shared,
        ]
    if migration.phase == "switched":
        return [
            f"Before this deploy, ask users to shut down their servers: / switches to the next "
            f"version of {service} and the previous one moves to {prev}; running servers are ended.",
            shared,
        ]
    if migration.phase == "retired":
        return [
            f"Announce that {prev} goes away: servers started from the previous version of {service} "
            "are ended by this deploy; only / remains.",
        ]
    return []
