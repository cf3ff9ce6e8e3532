"""Read a saved Terraform plan (`terraform show -json <plan>`): what changes, what it outputs.

`doit plan` feeds each stage's planned outputs to the stages after it, so a plan of a
domain change shows the real changes downstream. Terraform's plan JSON carries every
output's planned value, and marks the ones it cannot know before applying
(`after_unknown`); those come back as `UNKNOWN`, and a stage that reads one is planned
"after <upstream> applies". Pure: the JSON document in, a summary out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stagegraph.tfexpr import UNKNOWN


@dataclass(frozen=True)
class PlanSummary:
    add: int = 0
    change: int = 0
    destroy: int = 0
    #: Output name -> planned value, or UNKNOWN. Sensitive outputs are left out.
    outputs: dict[str, Any] = field(default_factory=dict)
    #: Outputs whose value changes (or is not known yet).
    changed_outputs: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.changed_outputs)

    def describe(self) -> str:
        """`2 to add, 1 to change, 0 to destroy; outputs changed: domain` or `no changes`."""
        if not self.has_changes:
            return "no changes"
        parts = []
        if self.add or self.change or self.destroy:
            parts.append(f"{self.add} to add, {self.change} to change, {self.destroy} to destroy")
        else:
            parts.append("no resource changes")
        if self.changed_outputs:
            parts.append(f"outputs changed: {', '.join(self.changed_outputs)}")
        return "; ".join(parts)


def _unknown_marked(value: Any, unknown: Any) -> Any:
    """`value` with UNKNOWN wherever Terraform's `after_unknown` mirror says true."""
    if unknown is True:
        return UNKNOWN
    if isinstance(value, dict) and isinstance(unknown, dict):
        return {k: _unknown_marked(v, unknown.get(k)) for k, v in value.items()} | {
            k: UNKNOWN for k, u in unknown.items() if u is True and k not in value
        }
    if isinstance(value, list) and isinstance(unknown, list):
        return [_unknown_marked(v, unknown[i] if i < len(unknown) else None) for i, v in enumerate(value)]
    return value


def summarize_plan(doc: Mapping[str, Any]) -> PlanSummary:
    counts = {"add": 0, "change": 0, "destroy": 0}
    for rc in doc.get("resource_changes") or []:
        actions = set((rc.get("change") or {}).get("actions") or [])
        if "create" in actions:
            counts["add"] += 1
        if "delete" in actions:
            counts["destroy"] += 1
        if "update" in actions:
            counts["change"] += 1
    outputs: dict[str, Any] = {}
    changed: list[str] = []
    for name, change in sorted((doc.get("output_changes") or {}).items()):
        if not isinstance(change, dict) or change.get("after_sensitive") is True:
            continue
        value = _unknown_marked(change.get("after"), change.get("after_unknown"))
        outputs[name] = value
        if (change.get("actions") or ["no-op"]) != ["no-op"]:
            changed.append(name)
    return PlanSummary(counts["add"], counts["change"], counts["destroy"], outputs, tuple(changed))
