"""`doit verify_pins`: does every pinned chart version, image tag and provider still exist?

Helm repositories drop old chart versions (Bitnami's six-month retention broke Nebari
v0.4.0 and v0.4.1 long after release) and image tags get deleted. Checking before a deploy
turns a failure halfway through a Terraform apply into one line per missing pin, naming
the lockfile line to change and the stages that use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stagegraph.lockfile import Lockfile
from stagegraph.pins.cadence import SECTIONS
from stagegraph.pins.sources import VERIFIED_KINDS, Sources, kind_of, origin, pins_of, value_field, value_of
from stagegraph.pins.usage import users_of
from stagegraph.stage import Stage


@dataclass(frozen=True)
class Missing:
    key: str
    version: str
    reason: str
    line: int | None  # 1-based line of the value in the lockfile
    stages: tuple[str, ...]


@dataclass(frozen=True)
class VerifyResult:
    checked: tuple[str, ...]
    missing: tuple[Missing, ...]
    hosts: int


def verify_pins(
    lock: Lockfile,
    stages: Iterable[Stage],
    sources: Sources,
    lockfile_text: str,
    lockfile: str,
    sections: Sequence[str] | None = None,
) -> VerifyResult:
    """Check every chart, image and provider pin (of `sections`, default all) upstream."""
    from stagegraph.pins.rewrite import value_lines

    stage_list = tuple(stages)
    every = pins_of(lock, sections if sections is not None else SECTIONS)
    pins = {k: p for k, p in every if kind_of(k, p) in VERIFIED_KINDS}
    reasons = sources.run_all(
        list(pins), lambda k: sources.missing(k, pins[k]), "verify_pins", "these pins could not be checked"
    )
    paths = {k: (*k.split("."), value_field(p)) for k, p in pins.items()}
    lines = value_lines(lockfile_text, list(paths.values()), lockfile)
    missing = tuple(
        Missing(k, value_of(pins[k]), reasons[k], lines[paths[k]] + 1, tuple(users_of(stage_list, k)))
        for k in pins
        if reasons[k]
    )
    hosts = {origin(p) for p in pins.values()}
    return VerifyResult(tuple(pins), missing, len(hosts))


def format_verify(result: VerifyResult, lockfile: str) -> str:
    """One line per missing pin, then a summary line."""
    lines = []
    for m in result.missing:
        where = f"{lockfile}:{m.line}" if m.line else lockfile
        used = f"used by {', '.join(m.stages)}" if m.stages else "used by no stage"
        lines.append(f"{where}: {m.key} {m.version}: {m.reason}; {used}")
    if result.missing:
        lines.append(
            f"verify_pins: {len(result.missing)} of {len(result.checked)} pinned versions no longer exist "
            f"upstream; pin versions that exist (`doit bump --group <group>` proposes some) and re-run"
        )
    else:
        lines.append(
            f"verify_pins: all {len(result.checked)} pinned charts, images and providers exist upstream "
            f"({result.hosts} registries)"
        )
    return "\n".join(lines)
