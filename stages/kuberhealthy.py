"""10-kubernetes-kuberhealthy: the Kuberhealthy operator and its CRDs (stand-in)."""

from __future__ import annotations

from pydantic import Field

from stagegraph.stage import Stage, StageIO, Upstream
from stagegraph.stages.common import ClusterNamespaceInputs
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.stages.placeholder import placeholder

NAME = "10-kubernetes-kuberhealthy"


class KuberhealthyOutputs(StageIO):
    namespace: str = Field(description="Namespace of the Kuberhealthy operator.")
    crds: list[str] = Field(description="Custom resources the operator serves.")


def connect(up: Upstream) -> ClusterNamespaceInputs:
    infra, init = up.get(InfrastructureOutputs), up.get(InitializeOutputs)
    return ClusterNamespaceInputs(
        kubeconfig_path=infra.kubeconfig_path, kube_context=infra.kube_context, namespace=init.namespace
    )


render = placeholder(
    NAME,
    "The Kuberhealthy CRDs and operator as manifests, applied with server-side apply.",
    (),
    lambda ctx: {
        "namespace": "${var.namespace}",
        "crds": ["khchecks.comcast.github.io", "khstates.comcast.github.io"],
    },
)

STAGE = Stage(
    name=NAME,
    description="Kuberhealthy operator and CRDs (manifests, server-side apply)",
    render=render,
    depends_on=("02-infrastructure", "03-kubernetes-initialize"),
    pins=("terraform", "helm_charts.kuberhealthy", "images.kuberhealthy"),
    inputs=ClusterNamespaceInputs,
    connect=connect,
    outputs=KuberhealthyOutputs,
    mock_outputs=KuberhealthyOutputs(namespace="dev", crds=[]),
    priority=100,
)
