"""Draw the stage graph: a self-contained SVG (no graphviz needed) and Graphviz DOT text.

The layout is a small Sugiyama pipeline, chosen because stage graphs are mostly chains with
a few fans, which read best top to bottom:

1. layer = longest path from a root, so every arrow points down and a stage sits one row
   below the last thing it waits for;
2. an edge that skips rows gets a chain of invisible "dummy" vertices, one per row it
   crosses, so it can be ordered and routed around boxes like any other vertex;
3. rows are ordered by alternating barycenter sweeps, keeping the ordering with the fewest
   crossings seen (counted exactly, as inversions between each pair of rows);
4. x positions are the least-squares fit to the neighbours' positions under "keep the order
   and do not overlap", solved exactly per row by pool-adjacent-violators.

Every step is deterministic (no set iteration, ties broken by position, fixed float
formatting), so the same nodes give byte-identical output in any process.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right, insort
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from stagegraph.errors import GraphError


@dataclass(frozen=True)
class NodeInfo:
    """What the views show about one stage; callers pass these in runtime order."""

    name: str  # "04-kubernetes-ingress"
    description: str  # one line
    depends_on: tuple[str, ...]
    config_sections: tuple[str, ...]  # dotted config paths, e.g. "security.keycloak"
    pins: tuple[str, ...]  # lockfile keys, e.g. "helm_charts.traefik"
    kind: str  # "terraform" | "manifests" | "custom"
    source: str  # "stagegraph" or a plugin name


@dataclass(frozen=True)
class Box:
    """A stage's box: top-left corner, size, and its row and rank within the row."""

    name: str
    x: float
    y: float
    width: float
    height: float
    layer: int
    order: int


@dataclass(frozen=True)
class Route:
    """An arrow from `source` (the dependency) to `target`, through `points` (first to last)."""

    source: str
    target: str
    points: tuple[tuple[float, float], ...]
    # True when the edge is routed through the rows it skips: points after the first come in
    # pairs (top, bottom) of each skipped row. False for one direct curve: an edge between
    # adjacent rows, or a long edge past _DUMMY_BUDGET.
    routed: bool


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    boxes: tuple[Box, ...]  # in the caller's (runtime) order
    routes: tuple[Route, ...]  # in dependent order, then in `depends_on` order
    crossings: int


# Geometry, in SVG user units (px). Text is set in a monospace font so that its width can
# be computed from the character count without font metrics: 0.6 em per character is the
# advance of DejaVu Sans Mono and Menlo, and a little more than Consolas.
_NAME_SIZE = 13.0
_SUB_SIZE = 10.5
_TITLE_SIZE = 15.0
_CHAR_EM = 0.6
_PAD_X = 14.0
_MIN_BOX_W = 110.0
_BOX_H = 44.0
_ROW_GAP = 52.0
_NODE_GAP = 26.0
_DUMMY_GAP = 16.0
_MARGIN = 20.0
_TITLE_H = 34.0
_SWEEPS = 12
_PLACEMENT_PASSES = 6
# A 500-stage chain where every stage also needs stage 1 would need ~125k dummies; past
# this many, the longest edges that skip rows are drawn as direct curves (still downward).
_DUMMY_BUDGET = 4_000

_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', 'Liberation Mono', monospace"
_FILL = {"terraform": "#ede7f6", "manifests": "#e3f2fd", "custom": "#fff3e0"}
_STROKE = {"terraform": "#5e35b1", "manifests": "#1e88e5", "custom": "#ef6c00"}
_DEFAULT_FILL = "#f5f5f5"
_DEFAULT_STROKE = "#757575"
_EDGE = "#607d8b"
_BUILTIN_SOURCE = "stagegraph"


def render_svg(nodes: Sequence[NodeInfo], title: str = "stagegraph") -> str:
    """The DAG as a standalone SVG document, dependencies above the stages that need them.

    Raises GraphError when a stage is listed twice or needs a stage that is not listed
    before it (the caller passes a topological order).
    """
    lay = compute_layout(nodes, title=title)
    by_name = {n.name: n for n in nodes}
    w, h = _num(lay.width), _num(lay.height)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="{_attr(_FONT)}">',
        f"<title>{_text(title)}</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{_EDGE}"/></marker>',
        "</defs>",
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
        f'<text class="title" x="{_num(_MARGIN)}" y="{_num(_MARGIN + _TITLE_SIZE)}" '
        f'font-size="{_num(_TITLE_SIZE)}" font-weight="bold" fill="#263238">{_text(title)}</text>',
    ]
    if not nodes:
        out.append(
            f'<text x="{_num(_MARGIN)}" y="{_num(_MARGIN + _TITLE_H + _NAME_SIZE)}" '
            f'font-size="{_num(_NAME_SIZE)}" fill="#757575">(no stages)</text>'
        )
    # Edges first so that boxes are painted over any curve that brushes them.
    out.append('<g class="edges">')
    out.extend(_edge_svg(r) for r in lay.routes)
    out.append("</g>")
    out.append('<g class="nodes">')
    ids: set[str] = set()
    out.extend(_node_svg(by_name[b.name], b, _xml_id(b.name, ids)) for b in lay.boxes)
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _edge_svg(r: Route) -> str:
    return (
        f'<g class="edge" data-source="{_attr(r.source)}" data-target="{_attr(r.target)}">'
        f"<title>{_text(r.source)} \u2192 {_text(r.target)}</title>"
        f'<path d="{_path(r)}" fill="none" stroke="{_EDGE}" stroke-width="1.4" '
        'marker-end="url(#arrow)"/></g>'
    )


def _node_svg(node: NodeInfo, b: Box, xml_id: str) -> str:
    fill = _FILL.get(node.kind, _DEFAULT_FILL)
    stroke = _STROKE.get(node.kind, _DEFAULT_STROKE)
    # Plugin stages get a dashed border: at a glance, what is ours and what was added.
    dash = "" if node.source == _BUILTIN_SOURCE else ' stroke-dasharray="5,3"'
    cx = _num(b.x + b.width / 2)
    # The description is the hover tooltip: it would make boxes too wide to read as a graph.
    tip = f"{node.name}: {node.description}" if node.description else node.name
    return (
        f'<g class="node" id="{xml_id}" data-stage="{_attr(node.name)}" data-layer="{b.layer}">'
        f"<title>{_text(tip)}</title>"
        f'<rect x="{_num(b.x)}" y="{_num(b.y)}" width="{_num(b.width)}" height="{_num(b.height)}" '
        f'rx="8" ry="8" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>'
        f'<text x="{cx}" y="{_num(b.y + 19)}" text-anchor="middle" font-size="{_num(_NAME_SIZE)}" '
        f'font-weight="bold" fill="#212121">{_text(node.name)}</text>'
        f'<text x="{cx}" y="{_num(b.y + 35)}" text-anchor="middle" font-size="{_num(_SUB_SIZE)}" '
        f'fill="#616161">{_text(_subline(node))}</text>'
        "</g>"
    )


def render_dot(nodes: Sequence[NodeInfo], title: str = "stagegraph") -> str:
    """The DAG as Graphviz DOT text (`dot -Tsvg`), with the same colours as `render_svg`."""
    _check(nodes)
    lines = [
        f"digraph {_dq(title)} {{",
        f"  graph [rankdir=TB, label={_dq(title)}, labelloc=t, labeljust=l, "
        'fontname="monospace", nodesep=0.4, ranksep=0.6];',
        '  node [shape=box, style="rounded,filled", fontname="monospace", fontsize=11];',
        '  edge [color="#607d8b", arrowsize=0.7];',
    ]
    for n in nodes:
        style = "rounded,filled" if n.source == _BUILTIN_SOURCE else "rounded,filled,dashed"
        attrs = [
            f"label={_dq(n.name + chr(10) + _subline(n))}",
            f"tooltip={_dq(n.description or n.name)}",
            f"fillcolor={_dq(_FILL.get(n.kind, _DEFAULT_FILL))}",
            f"color={_dq(_STROKE.get(n.kind, _DEFAULT_STROKE))}",
            f"style={_dq(style)}",
        ]
        lines.append(f"  {_dq(n.name)} [{', '.join(attrs)}];")
    for n in nodes:
        for dep in _unique(n.depends_on):
            lines.append(f"  {_dq(dep)} -> {_dq(n.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def compute_layout(nodes: Sequence[NodeInfo], title: str = "") -> Layout:
    """Positions of every box and route of every arrow; `render_svg` only draws this.

    `title` only widens the canvas so that the heading fits.
    """
    _check(nodes)
    n = len(nodes)
    index = {node.name: i for i, node in enumerate(nodes)}
    deps = [[index[d] for d in _unique(node.depends_on)] for node in nodes]
    layer = _layers(deps)
    edges = [(u, v) for v in range(n) for u in deps[v]]
    vlayer, chains = _split_long_edges(edges, layer)
    nv = len(vlayer)
    vwidth = [_box_width(node) for node in nodes] + [0.0] * (nv - n)
    succs: list[list[int]] = [[] for _ in range(nv)]
    preds: list[list[int]] = [[] for _ in range(nv)]
    for chain in chains:
        for a, b in pairwise(chain):
            if vlayer[b] == vlayer[a] + 1:  # only edges between adjacent rows take part in ordering
                succs[a].append(b)
                preds[b].append(a)
    depth = max(layer, default=-1) + 1
    rows: list[list[int]] = [[] for _ in range(depth)]
    for v in range(nv):  # start from runtime order, dummies after the real stages
        rows[vlayer[v]].append(v)

    rows = _order_rows(rows, preds, succs)
    pos = [0] * nv
    for row in rows:
        for k, v in enumerate(row):
            pos[v] = k
    xs = _place(rows, vwidth, n, preds, succs)
    _straighten(rows, xs, vwidth, n, pos, vlayer, [c[1:-1] for c in chains if len(c) > 2])
    shift = _MARGIN - min((xs[v] - vwidth[v] / 2 for v in range(nv)), default=0.0)
    xs = [x + shift for x in xs]
    right = max((xs[v] + vwidth[v] / 2 for v in range(nv)), default=0.0)
    width = max(right + _MARGIN, 2 * _MARGIN + _text_width(title, _TITLE_SIZE), _MIN_BOX_W + 2 * _MARGIN)
    top0 = _MARGIN + _TITLE_H
    height = top0 + depth * _BOX_H + max(depth - 1, 0) * _ROW_GAP + _MARGIN
    if n == 0:
        height = top0 + _NAME_SIZE + _MARGIN  # room for the "(no stages)" line
    tops = [top0 + lay * (_BOX_H + _ROW_GAP) for lay in vlayer]
    boxes = tuple(
        Box(nodes[v].name, xs[v] - vwidth[v] / 2, tops[v], vwidth[v], _BOX_H, layer[v], pos[v])
        for v in range(n)
    )
    routes = tuple(
        Route(nodes[c[0]].name, nodes[c[-1]].name, pts, len(c) > 2)
        for c, pts in zip(chains, _route_points(chains, xs, tops, vwidth, n), strict=True)
    )
    return Layout(width, height, boxes, routes, _total_crossings(rows, succs, pos))


def _layers(deps: list[list[int]]) -> list[int]:
    """Longest path from a root; deps point to earlier indices (runtime order)."""
    layer = [0] * len(deps)
    for i, ds in enumerate(deps):
        if ds:
            layer[i] = 1 + max(layer[d] for d in ds)
    return layer


def _split_long_edges(edges: list[tuple[int, int]], layer: list[int]) -> tuple[list[int], list[list[int]]]:
    """Vertex layers (real ones first, then dummies) and each edge as a chain of vertices.

    Dummies go to the shortest skipping edges first, up to the budget; the rest stay one
    direct curve, which keeps the cost bounded on dense graphs.
    """
    vlayer = list(layer)
    budget = _DUMMY_BUDGET
    routed: set[int] = set()
    for i in sorted(range(len(edges)), key=lambda i: (layer[edges[i][1]] - layer[edges[i][0]], i)):
        span = layer[edges[i][1]] - layer[edges[i][0]] - 1
        if span > budget:
            break
        if span > 0:
            routed.add(i)
            budget -= span
    chains = []
    for i, (u, v) in enumerate(edges):
        chain = [u]
        if i in routed:
            for lay in range(layer[u] + 1, layer[v]):
                chain.append(len(vlayer))
                vlayer.append(lay)
        chain.append(v)
        chains.append(chain)
    return vlayer, chains


def _route_points(
    chains: list[list[int]], xs: list[float], tops: list[float], widths: list[float], n_real: int
) -> list[tuple[tuple[float, float], ...]]:
    # Spread the arrows over a box's bottom (and top) edge in the left-to-right order of
    # where they go (come from), so that fans stay apart and do not cross at the box.
    out_port = [0.0] * len(chains)
    in_port = [0.0] * len(chains)
    by_src: list[list[int]] = [[] for _ in range(n_real)]
    by_dst: list[list[int]] = [[] for _ in range(n_real)]
    for i, chain in enumerate(chains):
        by_src[chain[0]].append(i)
        by_dst[chain[-1]].append(i)
    for v in range(n_real):
        out_ids = sorted(by_src[v], key=lambda i: (xs[chains[i][1]], i))
        for i, x in zip(out_ids, _ports(xs[v], widths[v], len(out_ids)), strict=True):
            out_port[i] = x
        in_ids = sorted(by_dst[v], key=lambda i: (xs[chains[i][-2]], i))
        for i, x in zip(in_ids, _ports(xs[v], widths[v], len(in_ids)), strict=True):
            in_port[i] = x
    result = []
    for i, chain in enumerate(chains):
        pts = [(out_port[i], tops[chain[0]] + _BOX_H)]
        for d in chain[1:-1]:
            pts.append((xs[d], tops[d]))
            pts.append((xs[d], tops[d] + _BOX_H))
        pts.append((in_port[i], tops[chain[-1]]))
        result.append(tuple(pts))
    return result


def _check(nodes: Sequence[NodeInfo]) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.name in seen:
            raise GraphError(f"stage {node.name!r} is listed twice in the graph view")
        for dep in node.depends_on:
            if dep not in seen:
                where = "is not in the graph" if all(n.name != dep for n in nodes) else "comes after it"
                raise GraphError(
                    f"stage {node.name!r} depends on {dep!r}, which {where}; "
                    "the graph view needs the stages in runtime order"
                )
        seen.add(node.name)


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- ordering -------------------------------------------------------------------------


def _order_rows(rows: list[list[int]], preds: list[list[int]], succs: list[list[int]]) -> list[list[int]]:
    """Alternating barycenter sweeps; returns the ordering with the fewest crossings."""
    nv = len(preds)
    pos = [0] * nv
    for row in rows:
        for k, v in enumerate(row):
            pos[v] = k
    rows = [list(r) for r in rows]
    best = [list(r) for r in rows]
    best_cross = _total_crossings(rows, succs, pos)
    stale = 0
    for sweep in range(_SWEEPS):
        if best_cross == 0:
            break
        down = sweep % 2 == 0
        order = range(1, len(rows)) if down else range(len(rows) - 2, -1, -1)
        nbrs = preds if down else succs
        for r in order:
            row = rows[r]
            # Sort by barycenter, ties (and vertices with no neighbours on that side, which
            # keep their place) by current position.
            keyed = [
                (sum([pos[u] for u in nbrs[v]]) / len(nbrs[v]) if nbrs[v] else float(pos[v]), pos[v], v)
                for v in row
            ]
            keyed.sort()
            row[:] = [v for _, _, v in keyed]
            for k, v in enumerate(row):
                pos[v] = k
        cross = _total_crossings(rows, succs, pos)
        if cross < best_cross:
            best_cross, best, stale = cross, [list(r) for r in rows], 0
        else:
            stale += 1
            if stale >= 3:
                break
    return best


def _total_crossings(rows: list[list[int]], succs: list[list[int]], pos: list[int]) -> int:
    return sum(_crossings(rows[r], succs, pos) for r in range(len(rows) - 1))


def _crossings(upper: list[int], succs: list[list[int]], pos: list[int]) -> int:
    """Crossings between two rows: inversions among edge ends, sorted by upper position."""
    seen: list[int] = []  # lower positions of the edges so far, kept sorted
    count = 0
    for v in upper:  # rows are kept in position order
        ends = sorted([pos[s] for s in succs[v]])
        for p in ends:
            # Earlier edges that end strictly to the right of p cross this one. insort is
            # O(E) per edge in principle, but a C memmove: faster here than a Fenwick tree.
            count += len(seen) - bisect_right(seen, p)
        for p in ends:
            insort(seen, p)
    return count


# --- x placement ----------------------------------------------------------------------


def _place(
    rows: list[list[int]], widths: list[float], n_real: int, preds: list[list[int]], succs: list[list[int]]
) -> list[float]:
    """Centre x of every vertex: alternating down/up passes that pull each row towards the
    mean of its neighbours in the row before, then one pass that looks both ways, so a
    stage sits between what it needs and what needs it."""
    xs = [0.0] * len(widths)
    offsets = [_offsets(row, widths, n_real) for row in rows]
    # Dummies weigh more so that long edges run straight and the boxes move around them.
    weights = [[1.0 if v < n_real else 4.0 for v in row] for row in rows]
    for row, offs in zip(rows, offsets, strict=True):  # start packed and centred
        half = offs[-1] / 2 if offs else 0.0
        for v, o in zip(row, offs, strict=True):
            xs[v] = o - half
    both = [preds[v] + succs[v] for v in range(len(widths))]
    last = len(rows) - 1
    passes = [
        (range(1, last + 1), preds) if p % 2 == 0 else (range(last - 1, -1, -1), succs)
        for p in range(_PLACEMENT_PASSES)
    ]
    passes.append((range(last + 1), both))
    for order, nbrs in passes:
        for r in order:
            row = rows[r]
            want = [sum([xs[u] for u in nbrs[v]]) / len(nbrs[v]) if nbrs[v] else xs[v] for v in row]
            for v, x in zip(row, _fit(want, offsets[r], weights[r]), strict=True):
                xs[v] = x
    return xs


def _straighten(
    rows: list[list[int]],
    xs: list[float],
    widths: list[float],
    n_real: int,
    pos: list[int],
    vlayer: list[int],
    dummy_chains: list[list[int]],
) -> None:
    """Line up each long edge's dummies on one x where the rows leave room.

    Placement pulls dummies towards their neighbours row by row, which leaves long edges
    with a small kink at every row; one vertical run reads much better.
    """
    # Two rounds: a chain that was boxed in by a crooked neighbour may fit once that
    # neighbour is straight.
    for chain in dummy_chains + dummy_chains:
        lo, hi = float("-inf"), float("inf")
        for d in chain:
            row, k = rows[vlayer[d]], pos[d]
            if k > 0:
                a = row[k - 1]
                lo = max(lo, xs[a] + widths[a] / 2 + _gap(a, d, n_real) + widths[d] / 2)
            if k + 1 < len(row):
                b = row[k + 1]
                hi = min(hi, xs[b] - widths[b] / 2 - _gap(d, b, n_real) - widths[d] / 2)
        if lo <= hi + 1e-6:
            x = min(max(sum(xs[d] for d in chain) / len(chain), lo), hi)
            for d in chain:
                xs[d] = x


def _gap(a: int, b: int, n_real: int) -> float:
    return _NODE_GAP if a < n_real and b < n_real else _DUMMY_GAP


def _offsets(row: list[int], widths: list[float], n_real: int) -> list[float]:
    """Minimum centre-to-centre distance from the row's first vertex to each vertex."""
    offs = [0.0]
    for a, b in pairwise(row):
        offs.append(offs[-1] + widths[a] / 2 + widths[b] / 2 + _gap(a, b, n_real))
    return offs[: len(row)]


def _fit(want: list[float], offs: list[float], weights: list[float]) -> list[float]:
    """Positions closest to `want` (weighted least squares) keeping order and spacing.

    With y_i = x_i - offs_i the spacing constraints become y_1 <= y_2 <= ..., an isotonic
    regression, which pool-adjacent-violators solves exactly in linear time.
    """
    blocks: list[list[float]] = []  # [weight sum, weighted target sum, count]
    for t, o, w in zip(want, offs, weights, strict=True):
        blocks.append([w, w * (t - o), 1.0])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][0] > blocks[-1][1] / blocks[-1][0]:
            w2, s2, c2 = blocks.pop()
            blocks[-1][0] += w2
            blocks[-1][1] += s2
            blocks[-1][2] += c2
    out: list[float] = []
    for w, s, c in blocks:
        out.extend([s / w] * int(c))
    return [y + o for y, o in zip(out, offs, strict=True)]


def _ports(cx: float, width: float, k: int) -> list[float]:
    if k <= 1:
        return [cx] * k
    step = min(18.0, (width - 2 * _PAD_X) / (k - 1))
    return [cx + (i - (k - 1) / 2) * step for i in range(k)]


# --- text and SVG ---------------------------------------------------------------------


def _subline(node: NodeInfo) -> str:
    return f"{node.kind} \u00b7 {node.source}"


def _box_width(node: NodeInfo) -> float:
    text = max(_text_width(node.name, _NAME_SIZE), _text_width(_subline(node), _SUB_SIZE))
    return max(_MIN_BOX_W, round(text + 2 * _PAD_X))


def _text_width(text: str, size: float) -> float:
    # East Asian wide characters take two monospace cells.
    cells = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return cells * _CHAR_EM * size


def _path(r: Route) -> str:
    pts = r.points
    parts = [f"M{_num(pts[0][0])},{_num(pts[0][1])}"]
    for i in range(1, len(pts)):
        (x0, y0), (x1, y1) = pts[i - 1], pts[i]
        if r.routed and i % 2 == 0:
            parts.append(f"L{_num(x1)},{_num(y1)}")  # straight through a skipped row
        else:
            # Vertical tangents at both ends: leaves and enters boxes straight, so the arrow
            # head (orient="auto") points down into the box.
            my = (y0 + y1) / 2
            parts.append(f"C{_num(x0)},{_num(my)} {_num(x1)},{_num(my)} {_num(x1)},{_num(y1)}")
    return " ".join(parts)


def _num(v: float) -> str:
    """Fixed formatting: one decimal, no '-0', no trailing '.0' (byte-stable output)."""
    s = f"{v:.1f}"
    if s == "-0.0":
        s = "0.0"
    return s[:-2] if s.endswith(".0") else s


# Characters XML 1.0 cannot carry at all, even escaped.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(s: str) -> str:
    s = _XML_BAD.sub("\ufffd", s)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(s: str) -> str:
    # Tabs and newlines in attributes are normalised to spaces by parsers; keep them.
    return _text(s).replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")


def _xml_id(name: str, used: set[str]) -> str:
    base = "stage-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    candidate, k = base, 2
    while candidate in used:
        candidate, k = f"{base}-{k}", k + 1
    used.add(candidate)
    return candidate


def _dq(s: str) -> str:
    """A DOT double-quoted string; `\\n` is DOT's centred line break."""
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{s}"'
