"""Check: each helm_release's values against its pinned chart's schema and defaults.

The values a release hands to Helm are evaluated from the render (`locals` reached through
`jsonencode`/`yamlencode`, plus `set` blocks) without Terraform. Then, as Helm does, the
chart's default values are coalesced under them and the result is validated against the
chart's `values.schema.json` (a chart without one is not schema-checked, and says so).
Separately, every key the render sets must be known to the chart: present in its default
`values.yaml` (bundled subcharts under their names) or named in its schema. An unknown
key is what a chart ignores silently, such as a top-level `load-balancer-ip` that was
meant for the Service. A map whose defaults are empty (and whose schema names nothing) is
free-form: its keys are the user's (annotations, env maps) and are not judged.

Some charts splice a string value into their YAML with `tpl ... | nindent` (keycloakx's
`extraEnv`); `SPLICED` lists those, and the check splices the value the same way and
parses the result, which is how a JSON string there breaks the StatefulSet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from stagegraph.checks import CheckRun, Finding, register
from stagegraph.checks.charts import ChartData
from stagegraph.checks.tfresources import resources
from stagegraph.tfexpr import Evaluator, is_known

NAME = "helm-values"

#: (chart, key) -> (YAML the chart writes before the value, indent of `nindent`).
#: keycloakx 2.x statefulset.yaml writes its own `env:` list items and then the value.
SPLICED: dict[tuple[str, str], tuple[str, int]] = {
    ("keycloakx", "extraEnv"): ("env:\n  - name: KC_HTTP_RELATIVE_PATH\n    value: /auth\n", 2),
    ("keycloakx", "extraEnvFrom"): ("envFrom:\n  - secretRef:\n      name: x\n", 2),
    ("keycloakx", "extraVolumeMounts"): ("volumeMounts:\n  - name: x\n    mountPath: /x\n", 2),
    ("keycloakx", "extraVolumes"): ("volumes:\n  - name: x\n    emptyDir: {}\n", 2),
    ("keycloakx", "extraContainers"): ("containers:\n  - name: x\n    image: x\n", 2),
    ("keycloakx", "extraInitContainers"): ("initContainers:\n  - name: x\n    image: x\n", 2),
    ("keycloakx", "extraPorts"): ("ports:\n  - name: http\n    containerPort: 8080\n", 2),
}


#: Maps that a chart documents as open although its values.yaml shows example keys and its
#: schema (if any) names some: other keys at that level are the user's, not the chart's
#: (the keys the chart knows are still checked below them). A path ending in `.*` is
#: free-form all the way down.
FREE_FORM: dict[str, tuple[str, ...]] = {
    # values.yaml: "ports: ... you can add more entrypoints" (Nebari adds ssh and minio).
    "traefik": ("ports",),
    # grafana.ini is Grafana's own INI file as a map; any section and key of Grafana's.
    "kube-prometheus-stack": ("grafana.grafana.ini.*",),
    # values.yaml documents `bucketNames` commented out under loki.storage; limits_config is
    # Loki's own configuration section, written out with toYaml.
    "loki": ("loki.storage", "loki.limits_config.*"),
}


#: Values whose chart defaults are credentials printed in the chart's own values.yaml: a
#: release that keeps them deploys a login anyone who read the chart can use. Each entry:
#: (dotted path, what it is, a dotted path that replaces it when set, or None).
DEFAULT_CREDENTIALS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    # minio 5.x: its post-install job creates this user.
    "minio": (("users", "a user `console`, password `console123`, policy consoleAdmin", None),),
    # Grafana's admin (kube-prometheus-stack 66 sets it); the subchart reads
    # admin.existingSecret instead when it is set.
    "kube-prometheus-stack": (
        ("grafana.adminPassword", "Grafana's admin password `prom-operator`", "grafana.admin.existingSecret"),
    ),
}


def _at(values: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(values, Mapping):
            return None
        values = values.get(part)
    return values


def default_credentials(chart: str, merged: Mapping[str, Any], defaults: Mapping[str, Any]) -> Iterator[str]:
    """The values where the release keeps a credential the chart publishes."""
    for key, what, replaced_by in DEFAULT_CREDENTIALS.get(chart, ()):
        if replaced_by is not None and _at(merged, replaced_by):
            continue
        if _at(defaults, key) and _at(merged, key) == _at(defaults, key):
            how = f"set {replaced_by}" if replaced_by else f"set {key} (to [] for none)"
            yield f"{key}: the chart's default is a published credential ({what}); {how}"


#: Maps every chart passes through whole into a container spec (`toYaml .Values...resources`):
#: their keys are Kubernetes resource names (cpu, memory, nvidia.com/gpu, ...), whatever
#: example the chart's values.yaml shows. The parent key must be `resources`.
RESOURCE_LISTS = ("requests", "limits")


def _resource_list(path: str) -> bool:
    parts = path.split(".")
    return len(parts) >= 2 and parts[-2] == "resources" and parts[-1] in RESOURCE_LISTS


#: Resource names a container may request without a domain (the API server's
#: validateContainerResourceName); any other name must be an extended resource `domain/name`.
CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_EXTENDED = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _container_resource(name: str) -> bool:
    return name in CONTAINER_RESOURCES or name.startswith("hugepages-") or bool(_EXTENDED.match(name))


def bad_resource_names(values: Any, path: str = "") -> Iterator[str]:
    """Keys of every `resources.requests`/`limits` map that no container may request.

    `unknown_keys` leaves these maps to Kubernetes; no chart is rendered here, so the names
    are judged here, as the API server will judge the pod (`memroy` fails the rollout).
    """
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        here = f"{path}.{key}" if path else str(key)
        if _resource_list(here) and isinstance(value, dict):
            yield from (f"{here}.{name}" for name in value if not _container_resource(str(name)))
        else:
            yield from bad_resource_names(value, here)


def release_values(body: Mapping[str, Any], ev: Evaluator) -> dict[str, Any]:
    """What Helm receives: each `values` document in order, then each `set`."""
    merged: dict[str, Any] = {}
    for doc in body.get("values") or []:
        value = ev.structure(doc)
        if isinstance(value, str):
            import yaml

            value = yaml.safe_load(value)
        if isinstance(value, dict):
            merged = coalesce(merged, value)
    for item in [*(body.get("set") or []), *(body.get("set_sensitive") or [])]:
        path = str(item.get("name", "")).split(".")
        node = merged
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part), dict) or part not in node else {}
        node[path[-1]] = ev.value(item.get("value"))
    return merged


def coalesce(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's rule: maps merge key by key; a null in `over` deletes the default."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if value is None:
            out.pop(key, None)
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = coalesce(old, value)
        else:
            out[key] = value
    return out


def _schema_props(schema: Any) -> tuple[dict[str, Any], bool]:
    """(named properties, whether other keys are allowed by name pattern or schema)."""
    if not isinstance(schema, dict):
        return {}, False
    props = dict(schema.get("properties") or {})
    # Only an explicit `additionalProperties` (true or a schema) opens a map: JSON Schema's
    # default allows any key, but a chart schema that lists properties means those.
    extra = schema.get("additionalProperties")
    open_ = bool(schema.get("patternProperties")) or extra is True or isinstance(extra, dict)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            more, more_open = _schema_props(sub)
            props.update(more)
            open_ = open_ or more_open
    return props, open_


def unknown_keys(
    values: Any, defaults: Any, schema: Any, path: str = "", free: tuple[str, ...] = ()
) -> Iterator[str]:
    if not isinstance(values, dict) or f"{path}.*" in free:
        return
    props, open_ = _schema_props(schema)
    # At the root, schema generators write `additionalProperties: true` on every chart
    # (traefik's): only the chart's own top-level keys are values there.
    open_ = (open_ and path != "") or path in free
    for key, value in values.items():
        here = f"{path}.{key}" if path else str(key)
        if _resource_list(here):  # Kubernetes resource names, not the chart's (bad_resource_names)
            continue
        in_defaults = isinstance(defaults, dict) and key in defaults
        if not in_defaults and key not in props:
            if not open_ and not (path == "" and key == "global"):
                yield here
            continue
        sub_defaults = defaults.get(key) if in_defaults else None
        sub_schema = props.get(key)
        sub_props, sub_open = _schema_props(sub_schema)
        free_map = not (isinstance(sub_defaults, dict) and sub_defaults) and not sub_props
        if isinstance(value, dict) and not free_map and not (sub_open and not sub_defaults):
            yield from unknown_keys(value, sub_defaults, sub_schema, here, free)


def schema_errors(merged: dict[str, Any], schema: dict[str, Any]) -> Iterator[str]:
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    for error in sorted(cls(schema).iter_errors(merged), key=lambda e: list(e.absolute_path)):
        # Keys are always known; a value Terraform fills in later is never judged.
        if error.validator not in ("additionalProperties", "required") and not is_known(error.instance):
            continue
        path = ".".join(str(p) for p in error.absolute_path) or "(top)"
        yield f"{path}: {error.message}"


def splice_errors(chart: str, values: Mapping[str, Any]) -> Iterator[str]:
    import yaml

    for (name, key), (before, indent) in SPLICED.items():
        value = values.get(key)
        if name != chart or not isinstance(value, str) or not value.strip():
            continue
        spliced = before + "\n".join(" " * indent + line for line in value.strip("\n").splitlines())
        try:
            doc = yaml.safe_load(spliced)
        except yaml.YAMLError as exc:
            problem = " ".join(str(exc).split())
            yield f"{key}: the chart splices it into its YAML (tpl | nindent) and gets invalid YAML: {problem}"
            continue
        items = next(iter(doc.values())) if isinstance(doc, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            yield f"{key}: the chart splices it under a YAML list; it must be list items ('- name: ...')"


@register(NAME, "Helm values against the pinned charts' values.schema.json and default values")
def check_helm_values(run: CheckRun) -> Iterator[Finding]:
    missing: dict[str, str] = {}
    for stage in run.stages:
        for file, doc in stage.terraform_documents().items():
            ev = Evaluator([doc], calls=True)
            for res in resources(doc):
                if res.type != "helm_release":
                    continue
                chart = str(res.body.get("chart", ""))
                version = str(res.body.get("version", ""))
                where = f"{file} {res.address} ({chart} {version})"
                data = run.charts.get(chart, version, str(res.body.get("repository", "")))
                if isinstance(data, str):
                    missing[f"{chart} {version}"] = data
                    yield Finding.skipped(stage.name, NAME, f"{where}: {data}")
                    continue
                shaped = release_values(res.body, Evaluator([doc], calls=True, shape=True))
                yield from _check_release(stage.name, where, data, release_values(res.body, ev), shaped)


def _check_release(
    stage: str, where: str, data: ChartData, values: dict[str, Any], shaped: dict[str, Any]
) -> Iterator[Finding]:
    for key in unknown_keys(values, data.values, data.schema, free=FREE_FORM.get(data.chart, ())):
        yield Finding.problem(
            stage,
            NAME,
            f"{where}: {key}: not a value of the chart (neither in its values.yaml nor in its "
            "values.schema.json); the chart ignores it",
        )
    for key in bad_resource_names(values):
        yield Finding.problem(
            stage,
            NAME,
            f"{where}: {key}: not a resource a container may request (cpu, memory, "
            "ephemeral-storage, hugepages-<size> or an extended resource such as nvidia.com/gpu); "
            "Kubernetes refuses the pod",
        )
    merged = coalesce(data.values, values)
    for message in default_credentials(data.chart, merged, data.values):
        yield Finding.problem(stage, NAME, f"{where}: {message}")
    if data.schema is None:
        yield Finding.skipped(stage, NAME, f"{where}: the chart has no values.schema.json; types not checked")
    else:
        for message in schema_errors(merged, data.schema):
            yield Finding.problem(stage, NAME, f"{where}: {message} [values.schema.json]")
    for message in splice_errors(data.chart, shaped):
        yield Finding.problem(stage, NAME, f"{where}: {message}")
