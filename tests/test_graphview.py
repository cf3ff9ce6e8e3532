from __future__ import annotations

import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagegraph.errors import GraphError
from stagegraph.graphview import NodeInfo, compute_layout, render_dot, render_svg

SVG = "{http://www.w3.org/2000/svg}"


def node(
    name: str, *deps: str, description: str = "", kind: str = "terraform", source: str = "stagegraph"
) -> NodeInfo:
    return NodeInfo(name, description or f"the {name} stage", tuple(deps), (), (), kind, source)


def sample() -> list[NodeInfo]:
    return [
        node("01-terraform-state"),
        node("02-infrastructure", "01-terraform-state"),
        node("03-kubernetes-initialize", "02-infrastructure"),
        node("04-kubernetes-ingress", "03-kubernetes-initialize"),
        node("05-kubernetes-keycloak", "04-kubernetes-ingress"),
        node("06-kubernetes-keycloak-configuration", "05-kubernetes-keycloak"),
        node("07-kubernetes-services", "06-kubernetes-keycloak-configuration", "04-kubernetes-ingress"),
        node("08-nebari-tf-extensions", "07-kubernetes-services"),
        node(
            "09-dashboards",
            "07-kubernetes-services",
            "03-kubernetes-initialize",
            kind="manifests",
            source="dashboards-plugin",
        ),
        node("10-kubernetes-kuberhealthy", "03-kubernetes-initialize", kind="custom"),
    ]


def parse(svg: str) -> tuple[dict[str, ET.Element], list[ET.Element]]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    stages = {g.get("data-stage", ""): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    edges = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    return stages, edges


def rect_y(g: ET.Element) -> float:
    rect = g.find(f"{SVG}rect")
    assert rect is not None
    return float(rect.get("y", "nan"))


def check_svg(nodes: list[NodeInfo], svg: str) -> None:
    """The structural promises of render_svg, for any valid input."""
    stages, edges = parse(svg)
    assert len([g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "node"]) == len(nodes)
    assert set(stages) == {n.name for n in nodes}
    expected = sorted((d, n.name) for n in nodes for d in dict.fromkeys(n.depends_on))
    assert sorted((e.get("data-source", ""), e.get("data-target", "")) for e in edges) == expected
    for e in edges:
        src, dst = stages[e.get("data-source", "")], stages[e.get("data-target", "")]
        assert int(src.get("data-layer", "-1")) < int(dst.get("data-layer", "-1"))
        assert rect_y(src) < rect_y(dst)  # drawn downward, too


def check_layout(nodes: list[NodeInfo]) -> None:
    lay = compute_layout(nodes)
    boxes = {b.name: b for b in lay.boxes}
    assert [b.name for b in lay.boxes] == [n.name for n in nodes]
    for n in nodes:
        layers = [boxes[d].layer for d in n.depends_on]
        # layer = longest path from a root
        assert boxes[n.name].layer == (1 + max(layers) if layers else 0)
    for r in lay.routes:
        ys = [y for _, y in r.points]
        assert ys == sorted(ys)
        assert ys[0] == boxes[r.source].y + boxes[r.source].height
        assert ys[-1] == boxes[r.target].y
    rows: dict[int, list[tuple[float, float]]] = {}
    for b in lay.boxes:
        rows.setdefault(b.layer, []).append((b.x, b.x + b.width))
        assert b.x >= 0 and b.x + b.width <= lay.width
        assert b.y >= 0 and b.y + b.height <= lay.height
    for spans in rows.values():  # boxes in one row never overlap
        spans.sort()
        for (_, right), (left, _) in pairwise(spans):
            assert right <= left


def test_svg_structure() -> None:
    nodes = sample()
    svg = render_svg(nodes, title="platform")
    check_svg(nodes, svg)
    check_layout(nodes)
    root = ET.fromstring(svg)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "platform"
    assert float(root.get("width", "0")) > 0 and float(root.get("height", "0")) > 0


def test_svg_is_deterministic() -> None:
    nodes = sample()
    assert render_svg(nodes) == render_svg(list(nodes))
    # And across processes, where str hashes (and so set order) differ.
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]; import test_graphview as t, stagegraph.graphview as g;"
        "sys.stdout.write(g.render_svg(t.sample()))"
    )
    here = os.path.dirname(__file__)
    outs = {
        subprocess.run(
            [sys.executable, "-c", code, here],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outs == {render_svg(nodes)}


def test_svg_escapes_text() -> None:
    nodes = [
        node("a<&>", description='<script>alert("x")</script> & more'),
        node("b\"'", "a<&>", description="tab\there \x00 nul \x1b[31m"),
    ]
    svg = render_svg(nodes, title="<t&>")
    assert "<script>" not in svg
    assert "a<&>" not in svg
    stages, edges = parse(svg)
    assert set(stages) == {"a<&>", "b\"'"}
    tip = stages["a<&>"].find(f"{SVG}title")
    assert tip is not None and tip.text == 'a<&>: <script>alert("x")</script> & more'
    assert edges[0].get("data-source") == "a<&>"
    texts = [t.text for t in stages["a<&>"].iter(f"{SVG}text")]
    assert texts[0] == "a<&>"
    assert texts[1] == "terraform \u00b7 stagegraph"


def test_box_width_follows_text_length() -> None:
    lay = compute_layout([node("a" * 10), node("b" * 60)])
    short, long = lay.boxes
    assert long.width > short.width
    # 60 monospace characters at 13px must fit with some padding.
    assert long.width >= 60 * 13 * 0.6


def test_barycenter_removes_avoidable_crossing() -> None:
    # Runtime order puts c (needs b) left of d (needs a): one crossing until reordered.
    nodes = [node("a"), node("b"), node("c", "b"), node("d", "a")]
    lay = compute_layout(nodes)
    boxes = {b.name: b for b in lay.boxes}
    assert lay.crossings == 0
    assert (boxes["a"].x < boxes["b"].x) == (boxes["d"].x < boxes["c"].x)


def test_long_edges_route_around_rows() -> None:
    nodes = [node("a"), node("b", "a"), node("c", "b"), node("d", "c", "a")]
    lay = compute_layout(nodes)
    (long_edge,) = [r for r in lay.routes if r.source == "a" and r.target == "d"]
    assert long_edge.routed
    assert len(long_edge.points) == 2 + 2 * 2  # ends + top/bottom of the two skipped rows
    b = {x.name: x for x in lay.boxes}["b"]
    # The skipped rows' run must not pass through b's box.
    xs = {x for x, _ in long_edge.points[1:-1]}
    assert all(x < b.x or x > b.x + b.width for x in xs)


def test_duplicate_dependencies_draw_one_edge() -> None:
    nodes = [node("a"), node("b", "a", "a")]
    _, edges = parse(render_svg(nodes))
    assert len(edges) == 1
    assert render_dot(nodes).count('"a" -> "b";') == 1


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([node("a", "b"), node("b")], "comes after it"),
        ([node("a", "zz")], "is not in the graph"),
        ([node("a"), node("a")], "listed twice"),
    ],
)
def test_rejects_invalid_order(nodes: list[NodeInfo], message: str) -> None:
    with pytest.raises(GraphError, match=message):
        render_svg(nodes)
    with pytest.raises(GraphError, match=message):
        render_dot(nodes)


def test_empty_graph() -> None:
    stages, edges = parse(render_svg([]))
    assert stages == {} and edges == []
    assert render_dot([]).startswith('digraph "stagegraph" {')


def test_dot_contains_every_edge() -> None:
    nodes = sample()
    dot = render_dot(nodes, title="platform")
    for n in nodes:
        assert f'"{n.name}" [' in dot
        for d in n.depends_on:
            assert f'  "{d}" -> "{n.name}";\n' in dot
    assert dot.count(" -> ") == sum(len(n.depends_on) for n in nodes)
    assert dot.rstrip().endswith("}")
    assert "dashed" in dot  # the plugin stage
    assert render_dot(nodes) == render_dot(list(nodes))


def test_dot_escapes_quotes_and_backslashes() -> None:
    dot = render_dot([node('a"b\\c', description="line1\nline2")])
    assert '"a\\"b\\\\c" [' in dot
    assert "line1\\nline2" in dot


def test_500_nodes_render_correctly() -> None:
    """Correctness at size; the time it takes is printed by the benchmark, not asserted."""
    rnd = random.Random(7)
    nodes: list[NodeInfo] = []
    for i in range(500):
        deps = sorted({f"s{rnd.randrange(i):03d}" for _ in range(rnd.randint(1, 3))}) if i else []
        nodes.append(node(f"s{i:03d}", *deps))
    svg = render_svg(nodes)
    check_svg(nodes, svg)


@st.composite
def dags(draw: st.DrawFn) -> list[NodeInfo]:
    # Any text XML can carry (descriptions below may hold anything, even NUL).
    letters = st.characters(blacklist_categories=("Cs", "Cc", "Cn"))
    names = draw(st.lists(st.text(letters, min_size=1, max_size=12), max_size=25, unique=True))
    nodes = []
    for i, name in enumerate(names):
        # Edges only from earlier to later nodes: any such list is a DAG in runtime order.
        deps = draw(st.lists(st.sampled_from(names[:i]), max_size=4)) if i else []
        description = draw(st.text(max_size=30))
        kind = draw(st.sampled_from(["terraform", "manifests", "custom", "other"]))
        nodes.append(
            NodeInfo(name, description, tuple(deps), (), (), kind, draw(st.sampled_from(["stagegraph", "p"])))
        )
    return nodes


@settings(max_examples=150, deadline=None)
@given(dags())
def test_random_dags_layer_downward_and_are_deterministic(nodes: list[NodeInfo]) -> None:
    svg = render_svg(nodes)
    check_svg(nodes, svg)
    check_layout(nodes)
    copy = [NodeInfo(n.name, n.description, tuple(n.depends_on), (), (), n.kind, n.source) for n in nodes]
    assert render_svg(copy) == svg
    assert render_dot(copy) == render_dot(nodes)


def _paths(nodes: list[NodeInfo]) -> set[tuple[str, str]]:
    """Every (a, b) such that b needs a, directly or through other stages."""
    needs: dict[str, set[str]] = {}
    for n in nodes:
        needs[n.name] = set(n.depends_on).union(*(needs[d] for d in n.depends_on))
    return {(a, b) for b, deps in needs.items() for a in deps}


def test_the_picture_draws_direct_dependencies_only() -> None:
    from stagegraph.graphview import direct_only

    drawn = {n.name: n.depends_on for n in direct_only(sample())}
    # 07 needs 04 through 05 and 06 as well: that arrow is implied, so it goes.
    assert drawn["07-kubernetes-services"] == ("06-kubernetes-keycloak-configuration",)
    assert drawn["09-dashboards"] == ("07-kubernetes-services",)
    assert drawn["10-kubernetes-kuberhealthy"] == ("03-kubernetes-initialize",)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_direct_only_is_the_transitive_reduction(data: st.DataObject) -> None:
    from stagegraph.graphview import direct_only

    n = data.draw(st.integers(1, 12))
    nodes = [
        node(
            f"s{i}",
            *sorted(
                data.draw(st.sets(st.sampled_from([f"s{j}" for j in range(i)]), max_size=4)) if i else []
            ),
        )
        for i in range(n)
    ]
    reduced = direct_only(nodes)
    assert _paths(reduced) == _paths(nodes)  # same reachability...
    for r in reduced:  # ...and no arrow that another path implies
        for dep in r.depends_on:
            rest = [
                x
                if x.name != r.name
                else NodeInfo(**{**x.__dict__, "depends_on": tuple(d for d in r.depends_on if d != dep)})
                for x in reduced
            ]
            assert (dep, r.name) not in _paths(rest)


def test_states_colour_the_boxes_and_the_legend_explains_them() -> None:
    nodes = sample()
    states = {n.name: "applied" for n in nodes} | {
        "05-kubernetes-keycloak": "stale",
        "08-nebari-tf-extensions": "failed",
    }
    svg = render_svg(nodes, states=states)
    stages, _ = parse(svg)
    assert stages["05-kubernetes-keycloak"].get("data-state") == "stale"
    fills = {name: g.find(f"{SVG}rect").get("fill") for name, g in stages.items()}  # type: ignore[union-attr]
    assert (
        fills["05-kubernetes-keycloak"] != fills["04-kubernetes-ingress"] != fills["08-nebari-tf-extensions"]
    )
    legend = [g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("class") == "legend"]
    texts = [t.text for t in legend[0].iter(f"{SVG}text")]
    assert {"fill: applied", "fill: stale", "fill: failed", "dashed: from a plugin"} <= set(texts)
    assert not any("never applied" in (t or "") for t in texts)  # only what the picture uses
    # Without records: no states, kinds only, still a legend.
    plain = ET.fromstring(render_svg(nodes))
    assert not any(g.get("data-state") for g in plain.iter(f"{SVG}g"))
    assert 'fillcolor="#ef9a9a"' in render_dot(nodes, states=states)
