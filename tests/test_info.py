from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stagegraph.graphview import NodeInfo
from stagegraph.info import format_info

FIELDS = ("kind", "state", "needs", "reads", "pins")


def sample() -> list[NodeInfo]:
    return [
        NodeInfo(
            "01-terraform-state",
            "Remote state for every later stage",
            (),
            ("provider", "terraform_state"),
            ("terraform.version",),
            "terraform",
            "stagegraph",
        ),
        NodeInfo(
            "02-infrastructure",
            "The cluster",
            ("01-terraform-state",),
            ("provider", "local.kube_context"),
            ("kind.node_image", "helm_charts.calico"),
            "terraform",
            "stagegraph",
        ),
        NodeInfo(
            "03-dashboards",
            "Dashboards from a plugin",
            ("02-infrastructure", "01-terraform-state"),
            ("monitoring",),
            (),
            "manifests",
            "grafana-plugin",
        ),
    ]


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """Read format_info's output back: stage name -> field -> items."""
    result: dict[str, dict[str, list[str]]] = {}
    for block in text.split("\n\n"):
        lines = block.split("\n")
        name, fields, current = lines[0], {}, ""
        assert not name.startswith(" ")
        for line in lines[1:]:
            label = line.strip().split(":", 1)[0]
            if line.startswith("  ") and not line.startswith("   ") and label in FIELDS:
                current = label
                fields[current] = line.split(":", 1)[1].strip()
            elif line.startswith(" " * 9) and current:
                fields[current] += " " + line.strip()  # continuation of a wrapped list
            else:
                fields.setdefault("description", "")
                fields["description"] = (fields["description"] + " " + line.strip()).strip()
        result[name] = {
            k: [v] if k in ("description", "kind", "state") else ([] if v == "(none)" else v.split(", "))
            for k, v in fields.items()
        }
    return result


def test_lists_every_dependency_section_and_pin() -> None:
    nodes = sample()
    text = format_info(nodes)
    parsed = parse(text)
    assert list(parsed) == [n.name for n in nodes]  # runtime order kept
    for n in nodes:
        info = parsed[n.name]
        assert info["needs"] == list(n.depends_on)
        assert info["reads"] == list(n.config_sections)
        assert info["pins"] == list(n.pins)
        assert info["kind"] == [f"{n.kind} ({n.source})"]
        assert info["description"] == [n.description]
        assert "state" not in info
    assert "pins:  (none)" in text


def test_states_when_given() -> None:
    parsed = parse(format_info(sample(), {"01-terraform-state": "applied", "02-infrastructure": "stale"}))
    assert parsed["01-terraform-state"]["state"] == ["applied"]
    assert parsed["02-infrastructure"]["state"] == ["stale"]
    assert parsed["03-dashboards"]["state"] == ["unknown"]


def test_deterministic_plain_and_narrow() -> None:
    nodes = sample()
    nodes[0] = NodeInfo(
        nodes[0].name,
        "a long description \x1b[31mwith colour\x1b[0m\tand a tab " * 6,
        (),
        tuple(f"section_{i}.with.a.longish.path" for i in range(30)),
        tuple(f"helm_charts.chart-{i}" for i in range(30)),
        "terraform",
        "stagegraph",
    )
    text = format_info(nodes)
    assert text == format_info(list(nodes))
    assert "\x1b" not in text and "\t" not in text
    assert all(ch == "\n" or ch >= " " for ch in text)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert not text.endswith("\n")
    info = parse(text)[nodes[0].name]
    assert info["reads"] == list(nodes[0].config_sections)
    assert info["pins"] == list(nodes[0].pins)


def test_long_item_is_not_split() -> None:
    item = "x." * 70 + "end"
    text = format_info([NodeInfo("a", "", (), ("short", item, "tail"), (), "custom", "p")], width=60)
    assert item in text
    assert parse(text)["a"]["reads"] == ["short", item, "tail"]


def test_no_stages() -> None:
    assert format_info([]) == "(no stages)"


names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,30}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(names, min_size=1, max_size=8, unique=True),
    st.lists(st.lists(names, max_size=15), min_size=3, max_size=3),
    st.integers(min_value=40, max_value=120),
)
def test_every_item_listed_at_any_width(stages: list[str], lists: list[list[str]], width: int) -> None:
    needs, reads, pins = lists
    nodes = [
        NodeInfo(s, "d", tuple(needs), tuple(reads), tuple(pins), "terraform", "stagegraph") for s in stages
    ]
    text = format_info(nodes, {s: "applied" for s in stages}, width=width)
    parsed = parse(text)
    assert list(parsed) == stages
    for s in stages:
        assert parsed[s]["needs"] == needs
        assert parsed[s]["reads"] == reads
        assert parsed[s]["pins"] == pins
    # Items are at most 31 characters, so wrapping keeps every line within the width.
    assert max(len(line) for line in text.splitlines()) <= max(width, 9 + 32)
