"""Where the stage graph's boxes and arrows go (`graphview` draws them): a small Sugiyama
pipeline, chosen because stage graphs are mostly chains with a few fans, which read best top
to bottom:

1. layer = longest path from a root, so every arrow points down and a stage sits one row
   below the last thing it waits for;
2. an edge that skips rows gets a chain of invisible "dummy" vertices, one per row it
   crosses, so it can be ordered and routed around boxes like any other vertex;
3. rows are ordered by alternating barycenter sweeps, keeping the ordering with the fewest
   crossings seen (counted exactly, as inversions between each pair of rows);
4. x positions are the least-squares fit to the neighbours' positions under "keep the order
   and do not overlap", solved exactly per row by pool-adjacent-violators.

Every step is deterministic (no set iteration, ties broken by position), so the same nodes
give the same layout in any process.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right, insort
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from stagegraph.errors import GraphError

if TYPE_CHECKING:
    from stagegraph.graphview import NodeInfo


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


# Geometry, in SVG user units (px). Text is set in a monospace font (see `graphview`) so
# that its width can be computed from the character count without font metrics: 0.6 em per
# character is the advance of DejaVu Sans Mono and Menlo, and a little more than Consolas.
NAME_SIZE = 13.0
SUB_SIZE = 10.5
TITLE_SIZE = 15.0
MARGIN = 20.0
TITLE_H = 34.0
_CHAR_EM = 0.6
_PAD_X = 14.0
_MIN_BOX_W = 110.0
_BOX_H = 44.0
_ROW_GAP = 52.0
_NODE_GAP = 26.0
_DUMMY_GAP = 16.0
_SWEEPS = 12
_PLACEMENT_PASSES = 6
# A 500-stage chain where every stage also needs stage 1 would need ~125k dummies; past
# this many, the longest edges that skip rows are drawn as direct curves (still downward).
_DUMMY_BUDGET = 4_000


def subline(node: NodeInfo) -> str:
    """The second line of a stage's box: its kind and where it comes from."""
    return f"{node.kind} \u00b7 {node.source}"


def _box_width(node: NodeInfo) -> float:
    text = max(_text_width(node.name, NAME_SIZE), _text_width(subline(node), SUB_SIZE))
    return max(_MIN_BOX_W, round(text + 2 * _PAD_X))


def _text_width(text: str, size: float) -> float:
    # East Asian wide characters take two monospace cells.
    cells = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return cells * _CHAR_EM * size


def compute_layout(nodes: Sequence[NodeInfo], title: str = "") -> Layout:
    """Positions of every box and route of every arrow; `render_svg` only draws this.

    `title` only widens the canvas so that the heading fits.
    """
    check_order(nodes)
    n = len(nodes)
    index = {node.name: i for i, node in enumerate(nodes)}
    deps = [[index[d] for d in dict.fromkeys(node.depends_on)] for node in nodes]
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
    shift = MARGIN - min((xs[v] - vwidth[v] / 2 for v in range(nv)), default=0.0)
    xs = [x + shift for x in xs]
    right = max((xs[v] + vwidth[v] / 2 for v in range(nv)), default=0.0)
    width = max(right + MARGIN, 2 * MARGIN + _text_width(title, TITLE_SIZE), _MIN_BOX_W + 2 * MARGIN)
    top0 = MARGIN + TITLE_H
    height = top0 + depth * _BOX_H + max(depth - 1, 0) * _ROW_GAP + MARGIN
    if n == 0:
        height = top0 + NAME_SIZE + MARGIN  # room for the "(no stages)" line
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


def check_order(nodes: Sequence[NodeInfo]) -> None:
    """Raise GraphError unless each stage is listed once, after all the stages it needs."""
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
