"""`lockfiles/CHANGELOG.md`: one dated entry per applied bump, appended at the end.

The entry says what moved, when upstream released it, and which stages re-apply because of
it, so "why did 07 re-deploy in April?" has an answer in the repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stagegraph.pins.bump import BumpPlan

HEADER = """# Lockfile changelog

Every `doit bump --apply` appends one dated entry here: the pins it changed in
`lockfiles/versions.yaml`, when upstream released each new version, and the stages that
re-render and re-apply because of it. Hand edits of the lockfile may add entries too.
"""


def entry(plan: BumpPlan, day: date, stages: Sequence[str]) -> str:
    lines = [
        f"## {day.isoformat()}: {plan.group.name} ({plan.group.description})",
        "",
        "| pin | from | to | released | policy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in plan.changes:
        released = p.released.isoformat() if p.released else "unknown"
        lines.append(f"| `{p.key}` | {p.current} | {p.proposed} | {released} | {p.policy} |")
    lines += ["", f"Stages to re-apply: {', '.join(stages) if stages else 'none'}.", ""]
    return "\n".join(lines)


def appended(existing: str | None, new_entry: str) -> str:
    """The changelog text with `new_entry` at the end (a new file starts with the header)."""
    text = existing if existing and existing.strip() else HEADER
    if not text.endswith("\n"):
        text += "\n"
    return f"{text}\n{new_entry}"
