"""02-infrastructure: the Kubernetes cluster.

local:    a kind cluster (node image from the lockfile) with MetalLB so LoadBalancer
          services get an address, as Nebari's local provider does.
existing: nothing is created; the outputs point at the kubeconfig context you named.
sandbox:  the kind cluster's twin: a terraform_data carrying the same inputs.
aws, gcp, azure: EKS / GKE / AKS and what they need (`stagegraph.stages.cloud`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stagegraph.stage import MachineContext, RenderContext, Rendered, Stage, StageIO
from stagegraph.stages.cloud import aws, azure, gcp
from stagegraph.stages.cloud.cluster import ClusterConnection
from stagegraph.stages.common import (
    NodeSelector,
    header,
    helm_release,
    require_rendered_provider,
)
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

NAME = "02-infrastructure"


class InfrastructureOutputs(StageIO):
    kubeconfig_path: str = Field(description="Kubeconfig file the cluster stages use.")
    kube_context: str | None = Field(None, description="Context in that kubeconfig.")
    cluster_name: str = Field(description="Name of the cluster.")
    node_selectors: dict[str, NodeSelector] = Field(
        description="Node selectors for the general, user and worker node groups."
    )
    load_balancer_pool: str | None = Field(
        None, description="Addresses MetalLB hands to LoadBalancer services (local: from the kind network)."
    )
    # Cloud clusters only (null elsewhere): later stages take what they need from these.
    cluster: ClusterConnection | None = Field(None, description="Endpoint, CA and token command (clouds).")
    autoscaler_role_arn: str | None = Field(None, description="IAM role of the cluster autoscaler (aws).")
    nfs_endpoint: str | None = Field(None, description="EFS file system DNS name (aws, storage.type efs).")
    container_registry: str | None = Field(
        None, description="Address of the cloud's registry for user images: ECR, Artifact Registry, ACR."
    )


#: Cloud renders of this stage, by provider.
_CLOUD_RENDERS = {"aws": aws.render, "gcp": gcp.render, "azure": azure.render}


def _selectors(ctx: RenderContext) -> dict[str, Any]:
    section = getattr(ctx.config, ctx.provider)
    selectors = getattr(section, "node_selectors", None) or {}
    return {k: {"key": v.key, "value": v.value} for k, v in sorted(selectors.items())}


def render(ctx: RenderContext) -> Rendered:
    require_rendered_provider(ctx, NAME)
    if ctx.provider == "existing":
        return {"main.tf.json": _existing(ctx)}
    if ctx.provider in _CLOUD_RENDERS:
        return {"main.tf.json": _CLOUD_RENDERS[ctx.provider](ctx)}
    return {"main.tf.json": _kind(ctx)}


#: The existing cluster's access, found at deploy time (`existing_access`): Terraform
#: variables of this stage, declared here because only the existing provider has them.
EXISTING_VARIABLES = {
    "kubeconfig_path": {
        "type": "string",
        "description": "Kubeconfig file holding the context: existing.kubeconfig, else KUBECONFIG, "
        "else ~/.kube/config (written into stagegraph.tfvars.json at deploy time).",
    },
    "kube_context": {
        "type": "string",
        "description": "Context of the existing cluster: existing.kube_context, else the current one.",
    },
}


def _existing(ctx: RenderContext) -> dict[str, Any]:
    m = TerraformModule(sandbox=False, comment=header(NAME))
    m.require(ctx.pins.version("terraform"), {})
    m.output("kubeconfig_path", "${var.kubeconfig_path}", "Kubeconfig of the existing cluster.")
    m.output("kube_context", "${var.kube_context}", "Context of the existing cluster.")
    m.output("cluster_name", "${var.kube_context}", "Name of the cluster (its context).")
    m.output("node_selectors", literal(_selectors(ctx)), "Node selectors per node group.")
    m.output("load_balancer_pool", None, "No MetalLB: the existing cluster brings its load balancers.")
    return {**m.document(), "variable": EXISTING_VARIABLES}


def existing_access(machine: MachineContext) -> dict[str, Any]:
    """Deploy time, existing provider only: the kubeconfig file and context, as kubectl finds them."""
    config = machine.config
    if config.provider != "existing":
        return {}
    from stagegraph.kube.kubeconfig import kubeconfig_source, resolve_kubeconfig

    existing = config.existing
    source = kubeconfig_source(
        existing.kubeconfig if existing is not None else None,
        config_dir=machine.config_dir,
        config_name=machine.config_name,
        environ=machine.environ,
        home=machine.home,
        cwd=machine.cwd,
    )
    target = resolve_kubeconfig(
        source,
        existing.kube_context if existing is not None else None,
        context_field=f"existing.kube_context in {machine.config_name}",
    )
    return {"kubeconfig_path": target.kubeconfig_path, "kube_context": target.context}


def _kind(ctx: RenderContext) -> dict[str, Any]:
    m = TerraformModule(sandbox=ctx.sandbox, comment=header(NAME))
    m.require(
        ctx.pins.version("terraform"),
        {p: ctx.pins.provider(p) for p in ("kind", "docker", "helm", "kubectl")},
    )
    node = ctx.pins.kind_node_image()
    cluster_name = f"{ctx.config.project_name}-{ctx.config.namespace}"
    kubeconfig = "${abspath(path.module)}/kubeconfig"
    cluster = m.resource(
        "kind_cluster",
        "default",
        {
            "name": literal(cluster_name),
            "node_image": node.ref,
            "kubeconfig_path": kubeconfig,
            "wait_for_ready": True,
            "kind_config": [
                {
                    "kind": "Cluster",
                    "api_version": "kind.x-k8s.io/v1alpha4",
                    "node": [{"role": "control-plane"}, {"role": "worker"}],
                }
            ],
        },
    )
    access = {
        "config_path": cluster.attr("kubeconfig_path", sandbox=kubeconfig),
        "config_context": f"kind-{literal(cluster_name)}",
    }
    m.provider("helm", {"kubernetes": [access]})
    m.provider("kubectl", {**access, "load_config_file": True})
    m.provider("docker", {})
    pool_range = _metallb_range(m, cluster)
    metallb = helm_release(
        m,
        ctx,
        "metallb",
        "metallb",
        "metallb-system",
        {},
        create_namespace=True,
        wait=True,
        depends_on=depends(cluster),
    )
    pool = {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": "kind", "namespace": "metallb-system"},
        "spec": {"addresses": [pool_range]},
    }
    advert = {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "L2Advertisement",
        "metadata": {"name": "kind", "namespace": "metallb-system"},
    }
    for name, manifest in (("address_pool", pool), ("l2_advertisement", advert)):
        m.resource(
            "kubectl_manifest",
            name,
            {"yaml_body": f"${{yamlencode({_hcl_object(manifest)})}}", "depends_on": depends(metallb)},
        )
    m.output(
        "kubeconfig_path",
        cluster.attr("kubeconfig_path", sandbox=kubeconfig),
        "Kubeconfig of the kind cluster.",
    )
    m.output("kube_context", f"kind-{literal(cluster_name)}", "Context of the kind cluster.")
    m.output("cluster_name", cluster.attr("name"), "Name of the cluster.")
    m.output("node_selectors", literal(_selectors(ctx)), "Node selectors per node group.")
    m.output("load_balancer_pool", pool_range, "Addresses MetalLB hands to LoadBalancer services.")
    return m.document()


#: kind's docker network when Docker picks the first free private range; the sandbox
#: computes the pool from it through the same Terraform expressions a real deploy runs.
SANDBOX_KIND_SUBNET = "172.18.0.0/16"


def _metallb_range(m: TerraformModule, cluster: Ref) -> str:
    """MetalLB's address range inside the `kind` docker network, as Nebari computes it.

    Docker picks the network's subnet when kind first creates it (172.18.0.0/16 on a fresh
    machine, another range when that one is taken), so it is read from Docker at apply
    time: the IPv4 entry (the one with a gateway) of the network's IPAM config, hosts 356
    to 406 of it, which is Nebari's choice (away from the low addresses Docker hands to
    the kind nodes).
    """
    network = m.data("docker_network", "kind", {"name": "kind", "depends_on": depends(cluster)})
    if m.sandbox:  # the twin of a data source has no attributes a real Docker would answer
        m.local("kind_subnet", SANDBOX_KIND_SUBNET)
    else:
        m.local(
            "kind_subnet", f'${{[for n in {network.address}.ipam_config : n.subnet if n.gateway != ""][0]}}'
        )
    return "${cidrhost(local.kind_subnet, 356)}-${cidrhost(local.kind_subnet, 406)}"


def _hcl_object(value: Any) -> str:
    """A JSON value as an HCL expression (JSON is valid HCL for objects and lists)."""
    import json

    return json.dumps(value, sort_keys=True)


STAGE = Stage(
    name=NAME,
    description="Kubernetes cluster: kind (local), your context (existing), EKS / GKE / AKS (clouds)",
    render=render,
    depends_on=("01-terraform-state",),
    config_sections=(
        "project_name",
        "namespace",
        "local",
        "existing",
        "sandbox",
        "amazon_web_services",
        "google_cloud_platform",
        "azure",
        "storage.type",
    ),
    pins=(
        "terraform",
        "providers.kind",
        "providers.helm",
        "providers.kubectl",
        "providers.docker",
        "helm_charts.metallb",
        "kubernetes.kind_node_image",
        "kubernetes.max_version",
        "providers.aws",
        "providers.google",
        "providers.azurerm",
        "providers.local",
    ),
    outputs=InfrastructureOutputs,
    mock_outputs=InfrastructureOutputs(
        kubeconfig_path="/mock/kubeconfig",
        kube_context="kind-mock",
        cluster_name="mock",
        node_selectors={},
        load_balancer_pool="172.18.1.100-172.18.1.150",
    ),
    provider_subdir=True,
    priority=20,
    machine_inputs=existing_access,
)
