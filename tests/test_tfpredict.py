"""Predicting a rendered stage's outputs from its Terraform JSON, and reading saved plans.

`status` and `plan` feed these predictions downstream, so a wrong "known" value would
make them lie; where the render cannot tell, the answer must be UNKNOWN, never a guess.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stagegraph.tfexpr import UNKNOWN
from stagegraph.tfjson import TerraformModule
from stagegraph.tfplan import summarize_plan
from stagegraph.tfpredict import merge_known, predict_outputs


def files(doc: dict[str, Any]) -> dict[str, bytes]:
    return {"main.tf.json": json.dumps(doc).encode()}


def test_literals_variables_locals_and_sandbox_twins_are_known() -> None:
    m = TerraformModule(sandbox=True, comment="t")
    ns = m.resource("kubernetes_namespace", "main", {"metadata": [{"name": "${var.namespace}"}]})
    url = m.local("url", "https://${var.domain}/auth")
    m.output("namespace", ns.attr("metadata[0].name"), "d")
    m.output("url", url, "d")
    m.output("port", 443, "d")
    m.output("svc", "http://keycloak.${var.namespace}.svc:80", "d")
    m.output("escaped", "$${not.a.reference}", "d")
    m.output("password", "${var.secret}", "d", sensitive=True)
    out = predict_outputs(files(m.document()), {"namespace": "dev", "domain": "example.org"})
    assert out == {
        "namespace": "dev",
        "url": "https://example.org/auth",
        "port": 443,
        "svc": "http://keycloak.dev.svc:80",
        "escaped": "${not.a.reference}",
    }


def test_what_only_an_apply_knows_is_unknown() -> None:
    m = TerraformModule(sandbox=False, comment="t")
    lb = m.resource("kubernetes_service", "lb", {"metadata": [{"name": "x"}]})
    m.output("address", lb.attr("status[0].load_balancer[0].ingress[0].ip"), "d")
    m.output("sum", "${var.a + 1}", "d")
    m.output("func", "${jsonencode(var.a)}", "d")
    m.output("directive", "%{if var.a}yes%{endif}", "d")
    m.output("missing_var", "${var.nope}", "d")
    m.output("partly", "https://${var.nope}/x", "d")
    out = predict_outputs(files(m.document()), {"a": 1})
    assert all(value is UNKNOWN for value in out.values()), out


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(alphabet="abc/:. -"),
        lambda c: (
            st.lists(c, max_size=3) | st.dictionaries(st.text(alphabet="xyz", min_size=1), c, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_a_variable_passed_straight_through_keeps_its_value_and_type(value: Any) -> None:
    doc = {"output": {"o": {"value": "${var.v}"}}}
    assert predict_outputs(files(doc), {"v": value}) == {"o": value}


def test_a_plan_says_what_changes_and_which_outputs_it_cannot_know() -> None:
    doc = {
        "resource_changes": [
            {"address": "a", "change": {"actions": ["create"]}},
            {"address": "b", "change": {"actions": ["update"]}},
            {"address": "c", "change": {"actions": ["delete", "create"]}},
            {"address": "d", "change": {"actions": ["no-op"]}},
        ],
        "output_changes": {
            "domain": {"actions": ["update"], "after": "new.example.com", "after_unknown": False},
            "ids": {"actions": ["update"], "after": {"a": "x"}, "after_unknown": {"a": False, "b": True}},
            "same": {"actions": ["no-op"], "after": 1, "after_unknown": False},
            "token": {
                "actions": ["update"],
                "after": "s3cr3t",
                "after_unknown": False,
                "after_sensitive": True,
            },
        },
    }
    summary = summarize_plan(doc)
    assert (summary.add, summary.change, summary.destroy) == (2, 1, 1)
    assert summary.outputs == {"domain": "new.example.com", "ids": {"a": "x", "b": UNKNOWN}, "same": 1}
    assert summary.changed_outputs == ("domain", "ids")
    assert summary.describe() == "2 to add, 1 to change, 1 to destroy; outputs changed: domain, ids"
    assert summarize_plan({}).describe() == "no changes"
    # Where the plan cannot know and the render can (a twin's output is its input), the render wins.
    assert merge_known({"a": UNKNOWN, "b": 2}, {"a": 1, "b": 3}) == {"a": 1, "b": 2}
