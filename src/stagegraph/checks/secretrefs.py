"""Check: every Secret a rendered object reads is created by some stage of the render.

A pod that reads a missing Secret never starts (CreateContainerConfigError), and nothing
in Terraform or the API schemas notices. This check collects the Secrets the render's own
objects read (`secretKeyRef`, `secretRef`, `secret` volumes, `imagePullSecrets`) and the
Secrets the render creates (`kubernetes_secret` resources and `Secret` objects), and names
each read whose Secret nobody creates. Secrets that a Helm chart creates are outside its
view: references inside Helm values are not judged, and `CHART_SECRETS` lists the
chart-made Secrets the render's own objects may read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stagegraph.checks import CheckRun, Finding, register
from stagegraph.checks.kubeobjects import KubeObject, objects_of
from stagegraph.checks.tfresources import resources
from stagegraph.tfexpr import UNKNOWN, Evaluator

NAME = "secret-references"

#: Secrets made by the pinned charts themselves, which the render's objects may read.
CHART_SECRETS: frozenset[str] = frozenset()


def _reads(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(where, secret name) of every Secret a Kubernetes object body reads."""
    if isinstance(value, dict):
        for key, sub in value.items():
            here = f"{path}.{key}" if path else str(key)
            if (
                key in ("secretKeyRef", "secretRef")
                and isinstance(sub, dict)
                and isinstance(sub.get("name"), str)
            ):
                if not sub.get("optional"):
                    yield here, sub["name"]
            elif key == "secret" and isinstance(sub, dict) and isinstance(sub.get("secretName"), str):
                if not sub.get("optional"):
                    yield here, sub["secretName"]
            elif key == "imagePullSecrets" and isinstance(sub, list):
                yield from (
                    (here, s["name"]) for s in sub if isinstance(s, dict) and isinstance(s.get("name"), str)
                )
            else:
                yield from _reads(sub, here)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _reads(sub, f"{path}[{i}]")


def _created(run: CheckRun) -> set[str]:
    names: set[str] = set(CHART_SECRETS)
    for stage in run.stages:
        for doc in stage.terraform_documents().values():
            ev = Evaluator([doc], calls=True)
            for res in resources(doc):
                if res.type in ("kubernetes_secret", "kubernetes_secret_v1"):
                    meta = res.body.get("metadata") or [{}]
                    name = ev.value((meta[0] if isinstance(meta, list) else meta).get("name"))
                    if isinstance(name, str):
                        names.add(name)
        for obj in objects_of(stage):
            if isinstance(obj, KubeObject) and obj.body.get("kind") == "Secret":
                name = (obj.body.get("metadata") or {}).get("name")
                if isinstance(name, str):
                    names.add(name)
    return names


@register(NAME, "Secrets read by the render's objects are created by some stage")
def check_secret_references(run: CheckRun) -> Iterator[Finding]:
    created = _created(run)
    for stage in run.stages:
        for obj in objects_of(stage):
            if not isinstance(obj, KubeObject):
                continue
            for where, name in _reads(obj.body):
                if name in created or name is UNKNOWN or "stagegraph-unknown" in name:
                    continue
                yield Finding.problem(
                    stage.name,
                    NAME,
                    f"{obj.where}: {obj.title}: {where}: reads Secret {name!r}, which no stage creates "
                    "(the pod would wait in CreateContainerConfigError)",
                )
