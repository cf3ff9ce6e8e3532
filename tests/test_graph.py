"""The stage graph: ordering, replacement by priority, and the errors users see."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandboxproject import BUILTIN_STAGE_NAMES

from stagegraph.errors import GraphError, UnknownStageError
from stagegraph.graph import build_graph
from stagegraph.stage import Stage
from stagegraph.stages.builtin import BUILTIN_STAGES


def _stage(name: str, deps: tuple[str, ...] = (), priority: int = 0, source: str = "test") -> Stage:
    return Stage(
        name=name, description=name, render=lambda ctx: {}, depends_on=deps, priority=priority, source=source
    )


def test_builtin_runtime_order_is_nebari_order() -> None:
    graph = build_graph(BUILTIN_STAGES)
    assert graph.names == BUILTIN_STAGE_NAMES


def test_builtin_graph_is_a_real_dag_not_a_chain() -> None:
    graph = build_graph(BUILTIN_STAGES)
    # Kuberhealthy needs only the cluster and namespace, so it can run beside 04..08.
    assert set(graph["10-kubernetes-kuberhealthy"].depends_on) == {
        "02-infrastructure",
        "03-kubernetes-initialize",
    }
    assert graph.ancestors(["04-kubernetes-ingress"]) == [
        "01-terraform-state",
        "02-infrastructure",
        "03-kubernetes-initialize",
        "04-kubernetes-ingress",
    ]
    assert "11-kubernetes-kuberhealthy-healthchecks" in graph.descendants(["10-kubernetes-kuberhealthy"])


def test_unknown_dependency_names_the_stage_and_lists_known_ones() -> None:
    with pytest.raises(UnknownStageError) as err:
        build_graph([_stage("a"), _stage("b", ("nope",))])
    assert str(err.value) == "stage 'b' depends on unknown stage 'nope'; known stages: a, b"


def test_cycle_is_named_with_its_providers() -> None:
    with pytest.raises(GraphError) as err:
        build_graph(
            [
                _stage("a", ("c",), source="p1"),
                _stage("b", ("a",)),
                _stage("c", ("b",), source="p2"),
                _stage("d"),
            ]
        )
    msg = str(err.value)
    assert "dependency cycle: a -> c -> b -> a" in msg
    assert "a from p1" in msg and "c from p2" in msg


def test_higher_priority_replaces_same_name() -> None:
    graph = build_graph([_stage("a", priority=1, source="builtin"), _stage("a", priority=5, source="plugin")])
    assert graph["a"].source == "plugin"


def test_same_priority_clash_lists_every_provider() -> None:
    with pytest.raises(GraphError) as err:
        build_graph([_stage("a", priority=5, source="p1"), _stage("a", priority=5, source="p2")])
    assert "p1 (priority 5)" in str(err.value) and "p2 (priority 5)" in str(err.value)


def test_up_to_is_runtime_order_prefix() -> None:
    graph = build_graph(BUILTIN_STAGES)
    assert graph.up_to("03-kubernetes-initialize") == graph.names[:3]
    with pytest.raises(UnknownStageError):
        graph.up_to("99-nope")


@st.composite
def dags(draw: st.DrawFn) -> list[Stage]:
    n = draw(st.integers(1, 25))
    names = [f"s{i:02d}" for i in range(n)]
    stages = []
    for i, name in enumerate(names):
        deps = draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=4)) if i else []
        stages.append(_stage(name, tuple(deps), priority=draw(st.integers(0, 3))))
    return draw(st.permutations(stages))


@given(dags())
@settings(max_examples=200, deadline=None)
def test_order_respects_every_dependency_and_is_deterministic(stages: list[Stage]) -> None:
    graph = build_graph(stages)
    position = {name: i for i, name in enumerate(graph.names)}
    for stage in graph.stages:
        for dep in stage.depends_on:
            assert position[dep] < position[stage.name]
    assert build_graph(list(reversed(stages))).names == graph.names
