"""Predict a rendered stage's output values without running Terraform.

`status` and `why` must say what the next deploy will apply, and a stage downstream of a
re-applied one re-applies only when an output it reads changes. Many outputs are known
from the render alone: literals (`"domain": "demo.example.com"`), variables
(`"${var.base_url}"`), locals, and in the sandbox the `terraform_data` twins, whose
`output` mirrors their `input`. Anything else (a real resource's computed attribute, a
function call, a sensitive variable) is `UNKNOWN`: known only after the apply, which is
exactly what Terraform's plan says of it too. The evaluation itself is `stagegraph.tfexpr`'s,
shared with `doit check`; this module says which files and outputs it reads.

Pure: JSON documents and variables in, values out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stagegraph.tfexpr import UNKNOWN, Evaluator, is_known


def predict_outputs(files: Mapping[str, bytes], variables: Mapping[str, Any]) -> dict[str, Any]:
    """Output name -> predicted value (or UNKNOWN) of a rendered Terraform stage.

    Sensitive outputs are left out: they are never recorded, so never compared.
    """
    docs: list[Mapping[str, Any]] = []
    for name, data in sorted(files.items()):
        if not name.endswith(".tf.json"):
            continue
        try:
            doc = json.loads(data)
        except ValueError:
            continue
        if isinstance(doc, dict):
            docs.append(doc)
    evaluator = Evaluator(docs, variables, twins=True)
    out: dict[str, Any] = {}
    for doc in docs:
        outputs = doc.get("output")
        if not isinstance(outputs, dict):
            continue
        for name, block in outputs.items():
            if isinstance(block, dict) and not block.get("sensitive"):
                out[name] = evaluator.value(block.get("value"))
    return out


def predict_outputs_in(stage_dir: Path, variables: Mapping[str, Any]) -> dict[str, Any]:
    """`predict_outputs` of the `*.tf.json` files of a stage directory as they are on disk."""
    files = {}
    for path in sorted(stage_dir.glob("*.tf.json")):
        try:
            files[path.name] = path.read_bytes()
        except OSError:
            continue
    return predict_outputs(files, variables)


def merge_known(planned: Mapping[str, Any], predicted: Mapping[str, Any]) -> dict[str, Any]:
    """Terraform's planned values, with what the render alone tells filled in.

    A plan marks a `terraform_data` twin's output unknown when its input changes, though
    the twin's output is its input: where the plan does not know and the render does, the
    render's value is right.
    """
    names = set(planned) | set(predicted)
    out: dict[str, Any] = {}
    for name in sorted(names):
        value = planned.get(name, UNKNOWN)
        out[name] = value if is_known(value) else predicted.get(name, UNKNOWN)
    return out
