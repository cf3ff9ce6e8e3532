"""The stage graph: resolve replacements, check the DAG, and order it.

Order comes from declared dependencies; priority only breaks ties between stages that are
ready at the same time (and decides which of two same-named stages wins). That makes the
runtime order stable and explainable: a stage never runs before what it reads.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stagegraph.errors import GraphError, UnknownStageError
from stagegraph.stage import Stage


@dataclass(frozen=True)
class StageGraph:
    """Stages in runtime order, with lookups for dependencies both ways."""

    stages: tuple[Stage, ...]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def __getitem__(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise UnknownStageError(name, self.names)

    def __contains__(self, name: object) -> bool:
        return any(s.name == name for s in self.stages)

    def dependents(self, name: str) -> list[str]:
        return [s.name for s in self.stages if name in s.depends_on]

    def ancestors(self, names: Iterable[str]) -> list[str]:
        """The named stages plus everything they need, in runtime order."""
        wanted: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in wanted:
                continue
            wanted.add(name)
            todo.extend(self[name].depends_on)
        return [n for n in self.names if n in wanted]

    def descendants(self, names: Iterable[str]) -> list[str]:
        """The named stages plus everything that depends on them, in runtime order."""
        wanted = set(names)
        for stage in self.stages:
            if wanted.intersection(stage.depends_on):
                wanted.add(stage.name)
        return [n for n in self.names if n in wanted]

    def up_to(self, name: str) -> list[str]:
        """`--stop-at`: every stage at or before `name` in runtime order."""
        index = self.names.index(self[name].name)
        return self.names[: index + 1]


def resolve(candidates: Sequence[Stage]) -> list[Stage]:
    """Pick one stage per name: the highest priority wins; a tie is an error naming both."""
    by_name: dict[str, list[Stage]] = {}
    for stage in candidates:
        by_name.setdefault(stage.name, []).append(stage)
    chosen: list[Stage] = []
    for name, group in by_name.items():
        group.sort(key=lambda s: s.priority, reverse=True)
        if len(group) > 1 and group[0].priority == group[1].priority:
            providers = ", ".join(f"{s.source} (priority {s.priority})" for s in group)
            raise GraphError(
                f"stage {name!r} is provided more than once at the same priority by: "
                f"{providers}; give the replacement a higher priority or disable one plugin"
            )
        chosen.append(group[0])
    return chosen


def build_graph(candidates: Sequence[Stage]) -> StageGraph:
    """Resolve replacements, validate edges, and order topologically (priority tie-break)."""
    stages = resolve(candidates)
    by_name = {s.name: s for s in stages}
    for stage in stages:
        for dep in stage.depends_on:
            if dep not in by_name:
                raise UnknownStageError(dep, by_name, referrer=stage.name)
    indegree = {s.name: len(set(s.depends_on)) for s in stages}
    dependents: dict[str, list[str]] = {s.name: [] for s in stages}
    for stage in stages:
        for dep in set(stage.depends_on):
            dependents[dep].append(stage.name)
    ready = [(by_name[n].priority, n) for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[Stage] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(by_name[name])
        for child in dependents[name]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, (by_name[child].priority, child))
    if len(order) != len(stages):
        raise GraphError(_describe_cycle(stages, {s.name for s in order}))
    return StageGraph(tuple(order))


def _describe_cycle(stages: Sequence[Stage], done: set[str]) -> str:
    """Name one cycle and the providers of every stage on it."""
    by_name = {s.name: s for s in stages if s.name not in done}
    start = min(by_name)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(d for d in by_name[node].depends_on if d in by_name)
    cycle = [*path[seen[node] :], node]
    who = ", ".join(sorted({f"{n} from {by_name[n].source}" for n in cycle}))
    return (
        f"dependency cycle: {' -> '.join(cycle)} (each needs the next); stages involved: {who}; "
        "remove one of these depends_on entries"
    )
