"""Draw the stage graph: a self-contained SVG (no graphviz needed) and Graphviz DOT text.

Where the boxes and arrows go is `graphlayout`'s job (re-exported here: `compute_layout`,
`Layout`, `Box`, `Route`); this module turns that layout into SVG, and the stages into DOT.
The output is byte-stable: fixed float formatting, and the layout is deterministic, so the
same nodes give byte-identical output in any process.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from stagegraph.graphlayout import (
    MARGIN,
    NAME_SIZE,
    SUB_SIZE,
    TITLE_H,
    TITLE_SIZE,
    Box,
    Layout,
    Route,
    check_order,
    compute_layout,
    subline,
)

__all__ = [
    "Box",
    "Layout",
    "NodeInfo",
    "Route",
    "compute_layout",
    "direct_only",
    "render_dot",
    "render_svg",
]


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


# Monospace, so that `graphlayout` can size boxes from the character count.
_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', 'Liberation Mono', monospace"
_FILL = {"terraform": "#ede7f6", "manifests": "#e3f2fd", "custom": "#fff3e0"}
_STROKE = {"terraform": "#5e35b1", "manifests": "#1e88e5", "custom": "#ef6c00"}
_DEFAULT_FILL = "#f5f5f5"
_DEFAULT_STROKE = "#757575"
_EDGE = "#607d8b"
_BUILTIN_SOURCE = "stagegraph"
#: With records, a box is filled by the stage's state (`doit status`), its border keeps the kind.
_STATE_FILL = {
    "applied": "#c8e6c9",
    "stale": "#ffe082",
    "deferred": "#ffe0b2",
    "failed": "#ef9a9a",
    "never applied": "#eeeeee",
    "destroyed": "#cfd8dc",
    "unknown": "#f8bbd0",
}
_LEGEND_ROW = 22.0


def direct_only(nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
    """The transitive reduction: keep `a -> c` only if no other path leads from a to c.

    What a stage needs through another stage is implied by the arrows through it; drawing
    it again (stage 02 had 8 arrows) hides the structure. `nodes` in runtime order.
    """
    reach: dict[str, set[str]] = {}  # stage -> everything it needs, directly or not
    out = []
    for node in nodes:
        deps = list(dict.fromkeys(node.depends_on))
        through = set().union(*(reach.get(d, set()) for d in deps)) if deps else set()
        kept = tuple(d for d in deps if d not in through)
        reach[node.name] = through | set(deps)
        out.append(replace(node, depends_on=kept))
    return out


def render_svg(
    nodes: Sequence[NodeInfo], title: str = "stagegraph", states: Mapping[str, str] | None = None
) -> str:
    """The DAG as a standalone SVG document, dependencies above the stages that need them,
    with a legend below; `states` (stage -> state from the records) fills each box.

    Raises GraphError when a stage is listed twice or needs a stage that is not listed
    before it (the caller passes a topological order).
    """
    lay = compute_layout(nodes, title=title)
    by_name = {n.name: n for n in nodes}
    legend = _legend(nodes, states)
    width = max(lay.width, MARGIN * 2 + max((_legend_width(t) for _, _, t in legend), default=0.0))
    legend_top = lay.height
    w, h = _num(width), _num(lay.height + len(legend) * _LEGEND_ROW + (MARGIN if legend else 0))
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
        f'<text class="title" x="{_num(MARGIN)}" y="{_num(MARGIN + TITLE_SIZE)}" '
        f'font-size="{_num(TITLE_SIZE)}" font-weight="bold" fill="#263238">{_text(title)}</text>',
    ]
    if not nodes:
        out.append(
            f'<text x="{_num(MARGIN)}" y="{_num(MARGIN + TITLE_H + NAME_SIZE)}" '
            f'font-size="{_num(NAME_SIZE)}" fill="#757575">(no stages)</text>'
        )
    # Edges first so that boxes are painted over any curve that brushes them.
    out.append('<g class="edges">')
    out.extend(_edge_svg(r) for r in lay.routes)
    out.append("</g>")
    out.append('<g class="nodes">')
    ids: set[str] = set()
    out.extend(_node_svg(by_name[b.name], b, _xml_id(b.name, ids), states) for b in lay.boxes)
    out.append("</g>")
    if legend:
        out.append('<g class="legend">')
        for i, (fill, stroke_style, text) in enumerate(legend):
            y = legend_top + i * _LEGEND_ROW
            out.append(
                f'<rect x="{_num(MARGIN)}" y="{_num(y)}" width="28" height="14" rx="3" ry="3" '
                f'fill="{fill}" {stroke_style}/>'
                f'<text x="{_num(MARGIN + 38)}" y="{_num(y + 11)}" font-size="{_num(SUB_SIZE)}" '
                f'fill="#37474f">{_text(text)}</text>'
            )
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


def _legend(nodes: Sequence[NodeInfo], states: Mapping[str, str] | None) -> list[tuple[str, str, str]]:
    """(fill, stroke attributes, text) of each legend entry that the picture uses."""
    entries: list[tuple[str, str, str]] = []
    kinds = list(dict.fromkeys(n.kind for n in nodes))
    for kind in kinds:
        stroke = _STROKE.get(kind, _DEFAULT_STROKE)
        fill = "#ffffff" if states else _FILL.get(kind, _DEFAULT_FILL)
        entries.append((fill, f'stroke="{stroke}" stroke-width="1.5"', f"border: {kind} stage"))
    if any(n.source != _BUILTIN_SOURCE for n in nodes):
        entries.append(
            ("#ffffff", f'stroke="{_DEFAULT_STROKE}" stroke-dasharray="5,3"', "dashed: from a plugin")
        )
    if states:
        for state in dict.fromkeys(states[n.name] for n in nodes if n.name in states):
            entries.append((_STATE_FILL.get(state, _DEFAULT_FILL), 'stroke="#9e9e9e"', f"fill: {state}"))
    entries.append(("#ffffff", 'stroke="none"', "arrow: needs (direct dependencies only)"))
    return entries


def _legend_width(text: str) -> float:
    return 38 + len(text) * 0.6 * SUB_SIZE


def _node_svg(node: NodeInfo, b: Box, xml_id: str, states: Mapping[str, str] | None = None) -> str:
    state = (states or {}).get(node.name)
    fill = _STATE_FILL.get(state, _DEFAULT_FILL) if state else _FILL.get(node.kind, _DEFAULT_FILL)
    stroke = _STROKE.get(node.kind, _DEFAULT_STROKE)
    # Plugin stages get a dashed border: at a glance, what is ours and what was added.
    dash = "" if node.source == _BUILTIN_SOURCE else ' stroke-dasharray="5,3"'
    cx = _num(b.x + b.width / 2)
    # The description is the hover tooltip: it would make boxes too wide to read as a graph.
    tip = f"{node.name}: {node.description}" if node.description else node.name
    if state:
        tip += f" ({state})"
    data_state = f' data-state="{_attr(state)}"' if state else ""
    return (
        f'<g class="node" id="{xml_id}" data-stage="{_attr(node.name)}" data-layer="{b.layer}"{data_state}>'
        f"<title>{_text(tip)}</title>"
        f'<rect x="{_num(b.x)}" y="{_num(b.y)}" width="{_num(b.width)}" height="{_num(b.height)}" '
        f'rx="8" ry="8" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>'
        f'<text x="{cx}" y="{_num(b.y + 19)}" text-anchor="middle" font-size="{_num(NAME_SIZE)}" '
        f'font-weight="bold" fill="#212121">{_text(node.name)}</text>'
        f'<text x="{cx}" y="{_num(b.y + 35)}" text-anchor="middle" font-size="{_num(SUB_SIZE)}" '
        f'fill="#616161">{_text(subline(node))}</text>'
        "</g>"
    )


def render_dot(
    nodes: Sequence[NodeInfo], title: str = "stagegraph", states: Mapping[str, str] | None = None
) -> str:
    """The DAG as Graphviz DOT text (`dot -Tsvg`), with the same colours as `render_svg`."""
    check_order(nodes)
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
            f"label={_dq(n.name + chr(10) + subline(n))}",
            f"tooltip={_dq(n.description or n.name)}",
            f"fillcolor={_dq(_dot_fill(n, states))}",
            f"color={_dq(_STROKE.get(n.kind, _DEFAULT_STROKE))}",
            f"style={_dq(style)}",
        ]
        lines.append(f"  {_dq(n.name)} [{', '.join(attrs)}];")
    for n in nodes:
        for dep in dict.fromkeys(n.depends_on):
            lines.append(f"  {_dq(dep)} -> {_dq(n.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_fill(node: NodeInfo, states: Mapping[str, str] | None) -> str:
    state = (states or {}).get(node.name)
    return _STATE_FILL.get(state, _DEFAULT_FILL) if state else _FILL.get(node.kind, _DEFAULT_FILL)


# --- text and SVG ---------------------------------------------------------------------


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
