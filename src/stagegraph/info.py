"""The stage graph as plain text for the terminal: what each stage needs, reads and pins.

Output is meant for a terminal, a pager and a CI log alike: no colour codes, no control
characters (descriptions come from plugins too), lines kept to about 100 columns, and the
same text for the same input so that it can be diffed.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence

from stagegraph.graphview import NodeInfo

WIDTH = 100
_INDENT = "  "
# Labels padded to one width so the values line up in a column.
_LABEL_W = len("needs: ")
_NONE = "(none)"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def format_info(
    nodes: Sequence[NodeInfo], states: Mapping[str, str] | None = None, *, width: int = WIDTH
) -> str:
    """One block per stage, in the given (runtime) order, separated by blank lines.

    With `states` (stage name -> deploy state) each block also says the stage's state;
    a stage missing from `states` shows as "unknown". No trailing newline.
    """
    if not nodes:
        return "(no stages)"
    return "\n\n".join(_block(node, states, width) for node in nodes)


def _block(node: NodeInfo, states: Mapping[str, str] | None, width: int) -> str:
    lines = [_clean(node.name)]
    description = _clean(node.description)
    if description:
        lines.extend(
            textwrap.wrap(
                description,
                width=width,
                initial_indent=_INDENT,
                subsequent_indent=_INDENT,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    lines.extend(_field("kind", [f"{_clean(node.kind)} ({_clean(node.source)})"], width))
    if states is not None:
        lines.extend(_field("state", [_clean(states.get(node.name, "unknown"))], width))
    lines.extend(_field("needs", node.depends_on, width))
    lines.extend(_field("reads", node.config_sections, width))
    lines.extend(_field("pins", node.pins, width))
    return "\n".join(lines)


def _field(label: str, items: Sequence[str], width: int) -> list[str]:
    """`label: a, b, c` packed greedily; continuation lines align under the first item.

    Items are never split (a dotted path or stage name broken across lines is harder to
    copy), so an item longer than the line gets a line of its own.
    """
    head = f"{_INDENT}{label}:".ljust(len(_INDENT) + _LABEL_W)
    pad = " " * len(head)
    values = [_clean(item) for item in items] or [_NONE]
    lines: list[str] = []
    current = ""
    for k, value in enumerate(values):
        piece = value + ("," if k < len(values) - 1 else "")
        if current and len(head) + len(current) + 1 + len(piece) > width:
            lines.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    lines.append(current)
    return [(head if i == 0 else pad) + line for i, line in enumerate(lines)]


def _clean(text: str) -> str:
    """One line, no escape sequences: control characters become spaces, runs collapse."""
    return " ".join(_CONTROL.sub(" ", text).split())
