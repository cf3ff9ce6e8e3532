"""11-kubernetes-kuberhealthy-healthchecks: one check per enabled service (stand-in)."""

from __future__ import annotations

from pydantic import Field

from stagegraph.stage import Stage, StageIO, Upstream
from stagegraph.stages.kuberhealthy import KuberhealthyOutputs
from stagegraph.stages.placeholder import placeholder
from stagegraph.stages.services import ServicesOutputs

NAME = "11-kubernetes-kuberhealthy-healthchecks"


class HealthchecksInputs(StageIO):
    namespace: str = Field(description="Namespace of the Kuberhealthy operator.")
    urls: dict[str, str] = Field(description="Service URLs to check.")


class HealthchecksOutputs(StageIO):
    checks: list[str] = Field(description="Names of the Kuberhealthy checks deployed.")


def connect(up: Upstream) -> HealthchecksInputs:
    kh, services = up.get(KuberhealthyOutputs), up.get(ServicesOutputs)
    return HealthchecksInputs(namespace=kh.namespace, urls=services.urls)


render = placeholder(
    NAME,
    "A KuberhealthyCheck (HTTP check) per enabled service, as manifests.",
    (),
    lambda ctx: {"checks": '${[for name in sort(keys(var.urls)) : "${name}-http-check"]}'},
)

STAGE = Stage(
    name=NAME,
    description="Kuberhealthy HTTP checks, one per enabled service",
    render=render,
    depends_on=("07-kubernetes-services", "10-kubernetes-kuberhealthy"),
    pins=("terraform", "images.kuberhealthy_http_check"),
    inputs=HealthchecksInputs,
    connect=connect,
    outputs=HealthchecksOutputs,
    mock_outputs=HealthchecksOutputs(checks=[]),
    priority=110,
)
