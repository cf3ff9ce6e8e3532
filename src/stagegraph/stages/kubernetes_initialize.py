"""03-kubernetes-initialize: the namespace, Traefik's CRDs, external registry credentials."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stagegraph.stage import RenderContext, Rendered, SensitiveInput, Stage, StageIO, Upstream
from stagegraph.stages.cloud import addons
from stagegraph.stages.common import ClusterAccess, cluster_module, helm_release
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.stage_checks import kubernetes_version_preflight, namespace_check
from stagegraph.tfjson import depends, literal

NAME = "03-kubernetes-initialize"


class InitializeInputs(ClusterAccess):
    autoscaler_role_arn: str | None = Field(
        None, description="IAM role the cluster autoscaler assumes (aws; null elsewhere)."
    )


class InitializeOutputs(StageIO):
    namespace: str = Field(description="Namespace the platform lives in.")
    registry_pull_secret: str | None = Field(
        None, description="Image pull secret for the external container registry, if any."
    )


def connect(up: Upstream) -> InitializeInputs:
    infra = up.get(InfrastructureOutputs)
    return InitializeInputs(
        kubeconfig_path=infra.kubeconfig_path,
        kube_context=infra.kube_context,
        autoscaler_role_arn=infra.autoscaler_role_arn,
    )


def render(ctx: RenderContext) -> Rendered:
    m = cluster_module(ctx, NAME, ("kubernetes", "helm"))
    ns = m.resource(
        "kubernetes_namespace",
        "main",
        {"metadata": [{"name": literal(ctx.config.namespace)}]},
    )
    namespace = ns.attr("metadata[0].name")
    helm_release(m, ctx, "traefik-crds", "traefik_crds", namespace, {})
    pull_secret: Any = None
    reg = ctx.config.external_container_reg
    if reg.enabled:
        pull_secret = _external_registry(m, ctx, namespace, depends(ns))
    addons.render_addons(ctx, m, namespace, depends(ns))
    m.output("namespace", namespace, "Namespace the platform lives in.")
    m.output("registry_pull_secret", pull_secret, "Image pull secret of the external registry.")
    return {"main.tf.json": m.document()}


def _external_registry(m: Any, ctx: RenderContext, namespace: str, after: list[str]) -> str:
    """AWS ECR credentials: a CronJob refreshes a dockerconfigjson secret every 6 hours.

    ECR tokens last 12 hours, so a static pull secret would go stale; this mirrors Nebari's
    extcr module. The access key secret reaches the cluster only through a sensitive
    variable, never through a rendered file.
    """
    reg = ctx.config.external_container_reg
    creds = m.resource(
        "kubernetes_secret",
        "extcr_aws",
        {
            "metadata": [{"name": "extcr-aws-credentials", "namespace": namespace}],
            "data": {
                "AWS_ACCESS_KEY_ID": literal(reg.access_key_id),
                "AWS_SECRET_ACCESS_KEY": "${var.extcr_secret_access_key}",
                "AWS_DEFAULT_REGION": literal(reg.extcr_region),
            },
            "depends_on": after,
        },
    )
    registry = f"{reg.extcr_account}.dkr.ecr.{reg.extcr_region}.amazonaws.com"
    script = (
        "kubectl delete secret extcrcreds --ignore-not-found && "
        "kubectl create secret docker-registry extcrcreds "
        f"--docker-server={registry} --docker-username=AWS "
        f"--docker-password=$(aws ecr get-login-password --region {reg.extcr_region})"
    )
    image = ctx.pins.image("aws_cli").ref
    m.resource(
        "kubernetes_cron_job_v1",
        "extcr_refresh",
        {
            "metadata": [{"name": "extcr-refresh", "namespace": namespace}],
            "spec": [
                {
                    "schedule": "0 */6 * * *",
                    "job_template": [
                        {
                            "metadata": [{}],
                            "spec": [
                                {
                                    "template": [
                                        {
                                            "metadata": [{}],
                                            "spec": [
                                                {
                                                    "restart_policy": "OnFailure",
                                                    "container": [
                                                        {
                                                            "name": "refresh",
                                                            "image": image,
                                                            "command": ["/bin/sh", "-c", literal(script)],
                                                            "env_from": [
                                                                {
                                                                    "secret_ref": [
                                                                        {"name": "extcr-aws-credentials"}
                                                                    ]
                                                                }
                                                            ],
                                                        }
                                                    ],
                                                }
                                            ],
                                        }
                                    ]
                                }
                            ],
                        }
                    ],
                }
            ],
            "depends_on": depends(creds),
        },
    )
    return "extcrcreds"


STAGE = Stage(
    name=NAME,
    description="Namespace, Traefik CRDs, registry credentials; cluster autoscaler and GPU plugin on EKS",
    render=render,
    depends_on=("02-infrastructure",),
    config_sections=("namespace", "external_container_reg", *addons.SECTIONS),
    pins=(
        "terraform",
        "providers.kubernetes",
        "providers.helm",
        "helm_charts.traefik_crds",
        "images.aws_cli",
        *addons.PINS,
    ),
    inputs=InitializeInputs,
    connect=connect,
    outputs=InitializeOutputs,
    mock_outputs=InitializeOutputs(namespace="dev"),
    sensitive=(
        SensitiveInput(
            "extcr_secret_access_key",
            "external_container_reg.secret_access_key",
            "Secret access key of the external container registry.",
        ),
    ),
    priority=30,
    preflight=kubernetes_version_preflight,
    check=namespace_check,
)
