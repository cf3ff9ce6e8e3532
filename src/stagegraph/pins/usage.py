"""Which stages use which pins: the stages a bump re-renders and re-applies.

Each stage declares its pins (`Stage.pins`) and its render may read no other, so a pin
change makes exactly the declaring stages stale; stages after them re-apply only if the
outputs they read change, which the deploy engine decides from the outputs themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

from stagegraph.graph import StageGraph
from stagegraph.stage import Stage


def stages_using(graph_or_stages: StageGraph | Iterable[Stage], changed_keys: Iterable[str]) -> list[str]:
    """Names of the stages that declare any of `changed_keys`, in graph (runtime) order."""
    stages = graph_or_stages.stages if isinstance(graph_or_stages, StageGraph) else tuple(graph_or_stages)
    keys = set(changed_keys)
    return [s.name for s in stages if keys.intersection(s.pins)]


def users_of(stages: Iterable[Stage], key: str) -> list[str]:
    """Names of the stages that declare one pin (for the verify report)."""
    return [s.name for s in stages if key in s.pins]
