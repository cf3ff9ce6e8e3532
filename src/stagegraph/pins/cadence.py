"""Which pins a quarterly bump touches: one group per quarter, in rotation.

The "Managing Nebari dependencies" RFD asks for staggered updates, a few things at a time,
so that when something breaks the cause is obvious: release X bumps the Python
dependencies, X+1 Kubernetes and the Helm charts, X+2 the Terraform providers, and the
fourth quarter the Terraform version and the container images. The group follows from the
calendar quarter of the date passed in (pure: no clock read here), so the scheduled CI job
and a person running `doit bump` on the same day agree; `--group` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from stagegraph.pins.errors import PinsArgumentError

#: The lockfile's top-level sections, in file order.
SECTIONS: tuple[str, ...] = ("terraform", "kubernetes", "providers", "helm_charts", "images", "python")


@dataclass(frozen=True)
class BumpGroup:
    name: str
    sections: tuple[str, ...]
    description: str


#: Index 0 is bumped in Q1 (January), 1 in Q2, 2 in Q3, 3 in Q4.
ROTATION: tuple[BumpGroup, ...] = (
    BumpGroup("python", ("python",), "Python dependencies of the tool"),
    BumpGroup(
        "kubernetes-helm",
        ("kubernetes", "helm_charts"),
        "maximum Kubernetes version, kind node image and Helm charts",
    ),
    BumpGroup("providers", ("providers",), "Terraform providers"),
    BumpGroup("terraform-images", ("terraform", "images"), "Terraform version and container images"),
)
ALL = BumpGroup("all", SECTIONS, "every pin")


def quarter(day: date) -> int:
    """1 for January-March ... 4 for October-December."""
    return (day.month - 1) // 3 + 1


def group_for(day: date) -> BumpGroup:
    return ROTATION[(quarter(day) - 1) % len(ROTATION)]


def group_names() -> list[str]:
    return [g.name for g in ROTATION] + list(SECTIONS) + [ALL.name]


def resolve_group(name: str | None, day: date) -> BumpGroup:
    """`--group`: a rotation group, one lockfile section, or `all`; empty means the quarter's."""
    if not name:
        return group_for(day)
    for group in ROTATION:
        if group.name == name:
            return group
    if name in SECTIONS:
        return BumpGroup(name, (name,), f"the {name} section")
    if name == ALL.name:
        return ALL
    raise PinsArgumentError(f"--group {name!r}: unknown group; choose one of {', '.join(group_names())}")
