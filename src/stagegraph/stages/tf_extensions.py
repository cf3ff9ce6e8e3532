"""08-nebari-tf-extensions: the configured helm_extensions and tf_extensions.

helm_extensions are Helm releases named in the config (with the chart version the config
gives: they are the user's own pins). tf_extensions are Nebari's small web services: a
Deployment, a Service and a Traefik IngressRoute under /<urlslug>, behind the platform's
forward-auth when `private` is set.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from stagegraph.stage import RenderContext, Rendered, Stage, StageIO, Upstream
from stagegraph.stages.common import ClusterNamespaceInputs, cluster_module
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.ingress import IngressOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.stages.services import ServicesOutputs
from stagegraph.tfjson import TerraformModule, depends, literal

NAME = "08-nebari-tf-extensions"


class ExtensionsInputs(ClusterNamespaceInputs):
    domain: str = Field(description="Domain the extensions answer on.")
    forwardauth_service: str = Field(description="Forward-auth service for private extensions.")


class ExtensionsOutputs(StageIO):
    helm_releases: list[str] = Field(description="Helm extensions deployed.")
    urls: dict[str, str] = Field(description="URL of each tf extension.")


def connect(up: Upstream) -> ExtensionsInputs:
    infra, init = up.get(InfrastructureOutputs), up.get(InitializeOutputs)
    ingress, services = up.get(IngressOutputs), up.get(ServicesOutputs)
    return ExtensionsInputs(
        kubeconfig_path=infra.kubeconfig_path,
        kube_context=infra.kube_context,
        namespace=init.namespace,
        domain=ingress.domain,
        forwardauth_service=services.forwardauth_service,
    )


def _hcl(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def render(ctx: RenderContext) -> Rendered:
    m = cluster_module(ctx, NAME, ("kubernetes", "helm", "kubectl"))
    releases = []
    for ext in ctx.config.helm_extensions:
        key = ext.name.replace("-", "_")
        values_ref = m.local(f"{key}_values", literal(dict(ext.overrides or {})))
        m.resource(
            "helm_release",
            key,
            {
                "name": literal(ext.name),
                "namespace": "${var.namespace}",
                "repository": literal(ext.repository),
                "chart": literal(ext.chart),
                "version": literal(ext.version),
                "values": [f"${{jsonencode({values_ref[2:-1]})}}"],
            },
        )
        releases.append(ext.name)
    urls: dict[str, str] = {}
    for tf_ext in ctx.config.tf_extensions:
        urls[tf_ext.name] = _tf_extension(m, tf_ext)
    m.output("helm_releases", releases, "Helm extensions deployed.")
    m.output("urls", {k: v for k, v in sorted(urls.items())}, "URL of each tf extension.")
    return {"main.tf.json": m.document()}


def _tf_extension(m: TerraformModule, ext: Any) -> str:
    key = ext.name.replace("-", "_")
    labels = {"app.kubernetes.io/name": literal(ext.name), "app.kubernetes.io/part-of": "nebari"}
    env = [{"name": literal(e.name), "value": literal(e.value)} for e in (ext.envs or [])]
    deployment = m.resource(
        "kubernetes_deployment",
        key,
        {
            "metadata": [{"name": literal(ext.name), "namespace": "${var.namespace}", "labels": labels}],
            "spec": [
                {
                    "replicas": 1,
                    "selector": [{"match_labels": labels}],
                    "template": [
                        {
                            "metadata": [{"labels": labels}],
                            "spec": [
                                {
                                    "container": [
                                        {
                                            "name": literal(ext.name),
                                            "image": literal(ext.image),
                                            "env": env,
                                            "port": [{"container_port": 80}],
                                        }
                                    ]
                                }
                            ],
                        }
                    ],
                }
            ],
        },
    )
    service = m.resource(
        "kubernetes_service",
        key,
        {
            "metadata": [{"name": literal(ext.name), "namespace": "${var.namespace}"}],
            "spec": [{"selector": labels, "port": [{"port": 80, "target_port": 80}]}],
            "depends_on": depends(deployment),
        },
    )
    middlewares: list[dict[str, str]] = []
    if ext.private:
        auth_name = f"{ext.name}-forwardauth"
        middleware = {
            "apiVersion": "traefik.io/v1alpha1",
            "kind": "Middleware",
            "metadata": {"name": literal(auth_name), "namespace": "${var.namespace}"},
            "spec": {
                "forwardAuth": {
                    "address": "${var.forwardauth_service}",
                    "authResponseHeaders": ["X-Forwarded-User"],
                }
            },
        }
        m.resource(
            "kubectl_manifest", f"{key}_forwardauth", {"yaml_body": f"${{yamlencode({_hcl(middleware)})}}"}
        )
        middlewares.append({"name": literal(auth_name)})
    route = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": literal(ext.name), "namespace": "${var.namespace}"},
        "spec": {
            "entryPoints": ["websecure"],
            "routes": [
                {
                    "kind": "Rule",
                    "match": f"Host(`${{var.domain}}`) && PathPrefix(`/{literal(ext.urlslug)}`)",
                    "middlewares": middlewares,
                    "services": [{"name": literal(ext.name), "port": 80}],
                }
            ],
        },
    }
    m.resource(
        "kubectl_manifest",
        f"{key}_route",
        {"yaml_body": f"${{yamlencode({_hcl(route)})}}", "depends_on": depends(service)},
    )
    return f"https://${{var.domain}}/{literal(ext.urlslug)}"


STAGE = Stage(
    name=NAME,
    description="Your helm_extensions and tf_extensions from the config",
    render=render,
    depends_on=(
        "02-infrastructure",
        "03-kubernetes-initialize",
        "04-kubernetes-ingress",
        "07-kubernetes-services",
    ),
    config_sections=("helm_extensions", "tf_extensions"),
    pins=("terraform", "providers.kubernetes", "providers.helm", "providers.kubectl"),
    inputs=ExtensionsInputs,
    connect=connect,
    outputs=ExtensionsOutputs,
    mock_outputs=ExtensionsOutputs(helm_releases=[], urls={}),
    priority=80,
)
