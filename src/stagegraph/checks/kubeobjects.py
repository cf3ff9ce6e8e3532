"""Check: every Kubernetes object of the render against the real API's schemas.

Objects are the YAML manifests of the manifest stages (10, 11) and the manifest bodies
inside Terraform resources (`kubectl_manifest.yaml_body`, `kubernetes_manifest.manifest`).
Built-in kinds are validated with the strict OpenAPI schemas that PyPI
`kubernetes-validate` ships, at the lockfile's maximum Kubernetes version (strict: an
unknown field is an error). Custom resources are validated against the CRDs their pinned
charts ship (`stagegraph.checks.crdschema`, unknown fields an error too). Names are
checked with the API server's rules (DNS-1123), which the OpenAPI schemas do not carry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from stagegraph.checks import CheckRun, Finding, StageRender, register
from stagegraph.checks.charts import DataLoader
from stagegraph.checks.crdschema import CrdIndex
from stagegraph.checks.tfresources import resources
from stagegraph.tfexpr import UNKNOWN, Evaluator, is_known

NAME = "kubernetes-objects"

#: Stand-in for a value only Terraform knows; errors about it are dropped (never guessed).
_PLACEHOLDER = "stagegraph-unknown-value"
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: Kinds whose names are DNS-1123 labels (63 characters), not subdomains.
_LABEL_KINDS = {"Namespace", "Service"}


@dataclass(frozen=True)
class KubeObject:
    where: str  # file, and the Terraform resource when the object sits inside one
    body: dict[str, Any]

    @property
    def title(self) -> str:
        name = (self.body.get("metadata") or {}).get("name", "?")
        return f"{self.body.get('kind', '?')}/{name if isinstance(name, str) else '?'}"


def objects_of(stage: StageRender, *, shape: bool = False) -> Iterator[KubeObject | str]:
    """The stage's Kubernetes objects; a str is a body that cannot be known before apply.

    shape: template strings keep their text with each interpolation as SHAPE_WORD (for
    checks of a string's form, such as which origin a URL points at).
    """
    for name, text in stage.yaml_files().items():
        for doc in yaml.load_all(text, Loader=DataLoader):
            if isinstance(doc, dict):
                yield KubeObject(name, doc)
    for file, doc in stage.terraform_documents().items():
        ev = Evaluator([doc], calls=True, shape=shape)
        for res in resources(doc):
            where = f"{file} {res.address}"
            if res.type == "kubectl_manifest":
                value = ev.structure(res.body.get("yaml_body"))
                if isinstance(value, str):
                    value = yaml.safe_load(value)
            elif res.type == "kubernetes_manifest":
                value = ev.value(res.body.get("manifest"))
            else:
                continue
            if value is UNKNOWN or not isinstance(value, dict):
                yield where
            else:
                yield KubeObject(where, _fill(value))


def _fill(value: Any) -> Any:
    if value is UNKNOWN:
        return _PLACEHOLDER
    if isinstance(value, dict):
        return {k: _fill(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v) for v in value]
    return value


#: Validators about an object's keys, which the render always knows.
_KEY_VALIDATORS = frozenset({"additionalProperties", "required", "propertyNames"})


def _about_placeholder(instance: Any) -> bool:
    return not is_known(instance) or _PLACEHOLDER in repr(instance)


class KubeSchemas:
    """kubernetes-validate's strict schemas for one Kubernetes version, loaded lazily."""

    def __init__(self, desired: str) -> None:
        from kubernetes_validate import utils

        self._utils = utils
        wanted = tuple(int(p) for p in utils.major_minor(desired).split("."))
        known = [
            v
            for v in utils.all_versions()
            if tuple(int(p) for p in utils.major_minor(v).split(".")) <= wanted
        ]
        if not known:
            raise LookupError(f"kubernetes-validate has no schemas for Kubernetes {desired} or older")
        self.version = known[-1]
        self._dir = f"kubernetes-json-schema/v{self.version}-local-strict"
        self._registry: Any = None

    def validator(self, api_version: str, kind: str) -> Any | None:
        import jsonschema
        from referencing import Registry, Resource

        group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        try:
            schema = self._utils.schema_contents(f"{self._dir}/{kind.lower()}-{group}.json", self.version)
        except FileNotFoundError:
            return None
        if self._registry is None:
            defs = self._utils.schema_contents(f"{self._dir}/_definitions.json", self.version)
            self._registry = Resource.from_contents(defs) @ Registry()
        registry = Resource.from_contents(schema) @ self._registry
        return jsonschema.Draft202012Validator(schema, registry=registry)


@lru_cache(maxsize=4)
def kube_schemas(version: str) -> KubeSchemas:
    return KubeSchemas(version)


def _crd_index(run: CheckRun, objects: list[tuple[str, KubeObject | str]]) -> CrdIndex:
    """CRDs of the pinned charts for the custom kinds the render uses, then the render's own."""
    wanted = {
        (str(o.body.get("apiVersion", "")).rpartition("/")[0], str(o.body.get("kind", "")))
        for _, o in objects
        if isinstance(o, KubeObject) and "." in str(o.body.get("apiVersion", ""))
    }
    index = CrdIndex()
    # Lockfile order: the charts that install CRDs (traefik_crds) come before those that
    # merely bundle copies of them (dask-gateway's Traefik CRDs); the first source wins.
    for key, pin in run.lock.helm_charts.items():
        data = run.charts.get(pin.chart, pin.version, pin.repository)
        if isinstance(data, str):
            continue  # reported by name when a custom resource of its group needs it
        index.add_all(data.crds(wanted), f"chart {pin.chart} {pin.version} ({key})")
    for stage, obj in objects:
        if isinstance(obj, KubeObject) and obj.body.get("kind") == "CustomResourceDefinition":
            index.add(obj.body, f"{stage} {obj.where}")
    return index


def _name_problem(body: dict[str, Any]) -> str | None:
    meta = body.get("metadata") or {}
    name = meta.get("name")
    if not isinstance(name, str) or name == _PLACEHOLDER:
        return None
    label = body.get("kind") in _LABEL_KINDS
    limit, rule = (63, _LABEL) if label else (253, _SUBDOMAIN)
    if len(name) > limit or not rule.match(name):
        what = "a DNS-1123 label" if label else "a DNS-1123 subdomain"
        return (
            f"metadata.name: {name!r} is not {what} (lowercase letters, digits and '-'"
            f"{'' if label else ', dots between parts'}; at most {limit} characters)"
        )
    return None


@register(NAME, "Kubernetes objects against the API's strict schemas and the pinned charts' CRDs")
def check_kubernetes_objects(run: CheckRun) -> Iterator[Finding]:
    schemas = kube_schemas(run.lock.kubernetes.max_version.version)
    objects = [(stage.name, obj) for stage in run.stages for obj in objects_of(stage)]
    crds = _crd_index(run, objects)
    missing: dict[str, set[str]] = {}
    for stage, obj in objects:
        if isinstance(obj, str):
            yield Finding.skipped(stage, NAME, f"{obj}: body known only at apply time")
            continue
        yield from _check_object(stage, obj, schemas, crds, missing)
    for stage, kinds in sorted(missing.items()):
        yield Finding.skipped(
            stage,
            NAME,
            f"no schema for {', '.join(sorted(kinds))}: neither Kubernetes {schemas.version} "
            "nor the CRDs of the pinned charts have it (see the helm-values skips for missing chart data)",
        )


def _check_object(
    stage: str, obj: KubeObject, schemas: KubeSchemas, crds: CrdIndex, missing: dict[str, set[str]]
) -> Iterator[Finding]:
    import jsonschema

    api_version = str(obj.body.get("apiVersion", ""))
    kind = str(obj.body.get("kind", ""))
    prefix = f"{obj.where}: {obj.title}"
    problem = _name_problem(obj.body)
    if problem:
        yield Finding.problem(stage, NAME, f"{prefix}: {problem}")
    validator = schemas.validator(api_version, kind)
    source = f"Kubernetes {schemas.version}"
    if validator is None:
        found = crds.get(api_version, kind)
        if found is None:
            if "." in api_version.rpartition("/")[0]:
                missing.setdefault(stage, set()).add(f"{kind} ({api_version})")
            else:
                yield Finding.problem(
                    stage, NAME, f"{prefix}: {api_version} {kind} is no kind of Kubernetes {schemas.version}"
                )
            return
        schema, source = found
        validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(obj.body), key=lambda e: [str(p) for p in e.absolute_path]):
        # Keys are always known; a value Terraform fills in later is never judged.
        if error.validator not in _KEY_VALIDATORS and _about_placeholder(error.instance):
            continue
        path = ".".join(str(p) for p in error.absolute_path) or "(top)"
        yield Finding.problem(stage, NAME, f"{prefix}: {path}: {error.message} [{source}]")
