"""Kubernetes building blocks shared by the 07 service modules.

Every manifest is kept structured in a `locals` entry and reaches the cluster through
`kubectl_manifest` with `yamlencode(local.<name>)`, so a rendered file shows each value of
a Deployment or IngressRoute on its own line and `git diff` points at the one that changed.
In the sandbox the same calls become `terraform_data` twins carrying the same bodies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stagegraph.tfjson import Ref, TerraformModule, depends

NAMESPACE = "${var.namespace}"
#: Traefik v3 CRDs (installed by 03 with the traefik-crds chart).
TRAEFIK_API = "traefik.io/v1alpha1"
NODE_GROUPS = ("general", "user", "worker")
_KEY = re.compile(r"[^a-z0-9_]+")


def tf_key(name: str) -> str:
    """A Terraform identifier for a Kubernetes-style name (`conda-store` -> `conda_store`)."""
    return _KEY.sub("_", name.lower()).strip("_")


def node_selector_locals(m: TerraformModule) -> dict[str, str]:
    """`nodeSelector` expression per node group, from 02's `node_selectors` input.

    A for-expression rather than an index: mocked upstream outputs (plan before 02 ran)
    carry no selectors, and an empty selector schedules anywhere instead of failing.
    """
    return {
        group: m.local(
            f"node_selector_{group}",
            f'${{{{for group, s in var.node_selectors : s.key => s.value if group == "{group}"}}}}',
        )
        for group in NODE_GROUPS
    }


def manifest(m: TerraformModule, key: str, body: dict[str, Any], after: Iterable[Ref] = ()) -> Ref:
    """A Kubernetes object from a structured local, applied with kubectl."""
    ref = m.local(f"{key}_manifest", body)
    resource: dict[str, Any] = {"yaml_body": f"${{yamlencode({ref[2:-1]})}}"}
    deps = depends(*after)
    if deps:
        resource["depends_on"] = deps
    return m.resource("kubectl_manifest", key, resource)


def app_labels(name: str) -> dict[str, str]:
    """The labels that select the pods of the platform's workload `name`."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "nebari"}


def metadata(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, **extra}


def secret_env(env: str, secret: str, key: str) -> dict[str, Any]:
    """An env var read from a Kubernetes secret: the value never passes through Terraform."""
    return {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def deployment(
    name: str,
    containers: list[dict[str, Any]],
    node_selector: str,
    *,
    volumes: list[dict[str, Any]] | None = None,
    service_account: str | None = None,
    strategy: str = "RollingUpdate",
) -> dict[str, Any]:
    """A one-replica Deployment labelled `app: <name>`."""
    labels = app_labels(name)
    pod: dict[str, Any] = {"nodeSelector": node_selector, "containers": containers}
    if volumes:
        pod["volumes"] = volumes
    if service_account:
        pod["serviceAccountName"] = service_account
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, labels=labels),
        "spec": {
            "replicas": 1,
            "strategy": {"type": strategy},
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def service(name: str, ports: dict[str, int], app: str | None = None) -> dict[str, Any]:
    """A ClusterIP Service in front of `deployment(app or name, ...)`."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name),
        "spec": {
            "selector": app_labels(app or name),
            "ports": [{"name": port_name, "port": port} for port_name, port in ports.items()],
        },
    }


@dataclass(frozen=True)
class Route:
    """One rule of an IngressRoute: a Traefik match sent to a service port."""

    match: str
    service: str
    port: int
    middlewares: tuple[str, ...] = field(default=())

    def rule(self) -> dict[str, Any]:
        return {
            "kind": "Rule",
            "match": self.match,
            "middlewares": [{"name": mw, "namespace": NAMESPACE} for mw in self.middlewares],
            "services": [{"name": self.service, "port": self.port, "namespace": NAMESPACE}],
        }


def host(paths: str) -> str:
    """A Traefik match on the platform's domain and the given path expression."""
    return f"Host(`${{var.domain}}`) && ({paths})"


def ingress_route(m: TerraformModule, name: str, routes: list[Route], after: Iterable[Ref] = ()) -> Ref:
    body = {
        "apiVersion": TRAEFIK_API,
        "kind": "IngressRoute",
        "metadata": metadata(name),
        "spec": {"entryPoints": ["websecure"], "routes": [r.rule() for r in routes]},
    }
    return manifest(m, f"route_{tf_key(name)}", body, after)


def middleware(m: TerraformModule, name: str, spec: dict[str, Any]) -> Ref:
    body = {"apiVersion": TRAEFIK_API, "kind": "Middleware", "metadata": metadata(name), "spec": spec}
    return manifest(m, f"middleware_{tf_key(name)}", body)


def strip_prefix(m: TerraformModule, name: str, prefix: str) -> Ref:
    return middleware(m, name, {"stripPrefix": {"prefixes": [prefix], "forceSlash": False}})


def random_secret(m: TerraformModule, key: str, length: int = 32) -> str:
    """A generated secret (alphanumeric), as a reference: never a literal in a render."""
    ref = m.resource("random_password", key, {"length": length, "special": False})
    # The sandbox twin has no `result`; a fixed stand-in keeps the data flow real.
    return str(ref.attr("result", sandbox=f"sandbox-{key.replace('_', '-')}"))


def opaque_secret(m: TerraformModule, name: str, data: dict[str, str]) -> Ref:
    """A Kubernetes secret whose values are Terraform references (generated or sensitive)."""
    return m.resource(
        "kubernetes_secret",
        tf_key(name),
        {"metadata": [{"name": name, "namespace": NAMESPACE}], "data": data, "type": "Opaque"},
    )
