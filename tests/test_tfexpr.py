"""The one evaluator of Terraform JSON strings that `status`/`why` predictions and `doit check` share.

What the render alone cannot know must come back UNKNOWN (a check then stays silent, a
prediction says "known after apply"); what it can know must come back as Terraform would
produce it.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stagegraph.tfexpr import SHAPE_WORD, UNKNOWN, Evaluator, is_known

DOC: dict[str, Any] = {
    "locals": {
        "ns": "dev",
        "values": {"hub": {"port": 8000, "tags": ["a", "b"]}, "host": "${var.domain}"},
        "url": "https://${local.ns}.example.org:${local.values.hub.port}/x",
        "loop_a": "${local.loop_b}",
        "loop_b": "${local.loop_a}",
    },
    "resource": {
        "terraform_data": {"kubernetes_namespace__main": {"input": {"metadata": [{"name": "ns-1"}]}}}
    },
}


def test_references_walk_into_locals_and_variables_and_keep_types() -> None:
    ev = Evaluator([DOC], {"domain": "example.org", "n": {"a": [1, 2]}})
    assert ev.value("${local.values.hub.port}") == 8000
    assert ev.value("${local.values.hub.tags[1]}") == "b"
    assert ev.value("${var.n.a[1]}") == 2
    assert ev.value("${local.values}") == {"hub": {"port": 8000, "tags": ["a", "b"]}, "host": "example.org"}
    assert ev.value("${local.url}") == "https://dev.example.org:8000/x"
    assert ev.value("${ var.n.a[0] }-${local.ns}") == "1-dev"
    assert ev.value({"k": ["$${local.ns}", "%%{x}"]}) == {"k": ["${local.ns}", "%{x}"]}


def test_what_needs_an_apply_is_unknown() -> None:
    ev = Evaluator([DOC], {"domain": "example.org"})
    for text in (
        "${var.missing}",
        "${local.values.hub.nope}",
        "${local.values.hub.tags[5]}",
        '${var.domain == "x" ? 1 : 2}',
        "${kubernetes_service.lb.status[0].load_balancer[0].ingress[0].ip}",
        '%{if var.domain != ""}yes%{endif}',
        "a-${local.values}",  # an object cannot be interpolated into text
        "${local.loop_a}",  # a cycle ends, unknown
        "${unbalanced",
    ):
        assert ev.value(text) is UNKNOWN, text
    # Twins resolve only when asked (predictions); checks read a sandbox render like a real one.
    twin = "${terraform_data.kubernetes_namespace__main.output.metadata[0].name}"
    assert ev.value(twin) is UNKNOWN
    assert Evaluator([DOC], twins=True).value(twin) == "ns-1"


def test_encoding_calls_only_when_the_caller_accepts_python_encoders() -> None:
    text = '${jsonencode({"a": "${local.ns}", "b": [1]})}'
    assert Evaluator([DOC]).value(text) is UNKNOWN  # a prediction compares bytes with Terraform's
    ev = Evaluator([DOC], calls=True)
    assert json.loads(ev.value(text)) == {"a": "dev", "b": [1]}
    assert ev.structure(text) == {"a": "dev", "b": [1]}
    assert ev.structure("${yamlencode(local.values)}")["hub"]["tags"] == ["a", "b"]
    assert ev.value("${yamlencode(local.values)}") is UNKNOWN  # its host is var.domain
    assert ev.structure("plain: yaml") == "plain: yaml"


def test_shape_keeps_the_text_and_marks_only_what_is_unknown() -> None:
    ev = Evaluator([DOC], shape=True)
    assert ev.value("https://${var.domain}/auth") == f"https://{SHAPE_WORD}/auth"
    assert ev.value("${local.ns}-${var.x}") == f"dev-{SHAPE_WORD}"
    assert ev.value('x: ${var.a == "}" ? "${var.b}" : "c"}\ny: 1') == f"x: {SHAPE_WORD}\ny: 1"
    assert ev.value("%{for v in var.l}${v}%{endfor}") == SHAPE_WORD * 3
    assert ev.value("${var.domain}") is UNKNOWN  # a whole interpolation has no text to keep


@given(st.text(alphabet='ab${}%"\\ .', max_size=24))
def test_any_string_evaluates_without_error_and_plain_text_is_itself(text: str) -> None:
    ev = Evaluator([DOC], {"a": "A"})
    result = ev.value(text)
    assert result is UNKNOWN or isinstance(result, (str, int, float, bool, dict, list))
    if "{" not in text:
        assert result == text
    assert is_known(result) == (result is not UNKNOWN)
