"""045-hello: a ConfigMap with a greeting, between the ingress (04) and Keycloak (05).

It reads the ingress outputs (typed, through `Upstream`) and the plugin's own config
section, so changing `stagegraph.plugins.settings.hello` re-applies this stage only. On the
sandbox provider the ConfigMap becomes a `terraform_data` twin, like every built-in stage.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stagegraph.plugins.hookspecs import ConfigSection
from stagegraph.plugins.settings import SETTINGS_PATH, read_settings
from stagegraph.stage import RenderContext, Rendered, Stage, StageIO, Upstream
from stagegraph.stages.common import ClusterNamespaceInputs, cluster_module
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.ingress import IngressOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.tfjson import literal

NAME = "045-hello"


class HelloSettings(BaseModel):
    """`stagegraph.plugins.settings.hello` in the config."""

    # Unknown keys are errors, as everywhere in the config (stagegraph refuses other models).
    model_config = ConfigDict(extra="forbid", frozen=True)

    greeting: str = Field("Hello", min_length=1, description="The greeting the stage writes.")
    audience: str = Field("world", min_length=1, description="Who is greeted.")


SECTION = ConfigSection(name="hello", model=HelloSettings, description="Settings of the hello plugin.")


class HelloInputs(ClusterNamespaceInputs):
    domain: str = Field(description="Domain the platform answers on (from 04-kubernetes-ingress).")


class HelloOutputs(StageIO):
    message: str = Field(description="The greeting, as written into the ConfigMap.")
    config_map: str = Field(description="Name of the ConfigMap holding it.")


def connect(up: Upstream) -> HelloInputs:
    infra = up.get(InfrastructureOutputs)
    return HelloInputs(
        kubeconfig_path=infra.kubeconfig_path,
        kube_context=infra.kube_context,
        namespace=up.get(InitializeOutputs).namespace,
        domain=up.get(IngressOutputs).domain,
    )


def message(greeting: str, audience: str, domain: str) -> str:
    return f"{greeting}, {audience}, from https://{domain}"


def render(ctx: RenderContext) -> Rendered:
    settings = read_settings(ctx, SECTION)
    m = cluster_module(ctx, NAME, ("kubernetes",))
    config_map = m.resource(
        "kubernetes_config_map",
        "hello",
        {
            "metadata": [{"name": "hello", "namespace": "${var.namespace}"}],
            # literal(): text from the config never becomes a Terraform template.
            "data": {
                "message": message(literal(settings.greeting), literal(settings.audience), "${var.domain}")
            },
        },
    )
    m.output("message", config_map.attr("data.message"), "The greeting, as written into the ConfigMap.")
    m.output("config_map", config_map.attr("metadata[0].name"), "Name of the ConfigMap.")
    return {"main.tf.json": m.document()}


STAGE = Stage(
    name=NAME,
    description="Hello from a plugin: a ConfigMap with a greeting, between the ingress and Keycloak",
    render=render,
    # 05-kubernetes-keycloak does not depend on this stage: priority 45 (between the
    # ingress's 40 and Keycloak's 50) is what runs it first once the ingress is done.
    depends_on=("02-infrastructure", "03-kubernetes-initialize", "04-kubernetes-ingress"),
    config_sections=(SETTINGS_PATH,),
    pins=("terraform", "providers.kubernetes"),
    inputs=HelloInputs,
    connect=connect,
    outputs=HelloOutputs,
    mock_outputs=HelloOutputs(message="Hello, world, from https://mock.example.com", config_map="hello"),
    priority=45,
)
