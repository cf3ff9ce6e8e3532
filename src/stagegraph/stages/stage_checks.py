"""The checks the built-in stages run against a real cluster (never in the sandbox).

Each takes the engine's `CheckContext`, finds the cluster through the typed outputs of
02-infrastructure, and asks one question through `stagegraph.kube.checks`. The stage
modules import this one, so it stays light: the `kubernetes` package is only imported when
a check actually connects.
"""

from __future__ import annotations

from stagegraph.errors import DeployError
from stagegraph.kube import checks
from stagegraph.kube.client import KubeTarget, connect
from stagegraph.stage import CheckContext
from stagegraph.stages.infrastructure import InfrastructureOutputs

#: How long to wait for things that settle after an apply (a cloud load balancer, a rollout).
ADDRESS_WAIT_S = 180.0
ROLLOUT_WAIT_S = 300.0
INGRESS_SERVICE = "traefik"
HUB_DEPLOYMENT = "hub"
KUBERHEALTHY_DEPLOYMENT = "kuberhealthy"


def _target(ctx: CheckContext) -> KubeTarget:
    infra = ctx.upstream.get(InfrastructureOutputs)
    return KubeTarget(infra.kubeconfig_path, infra.kube_context)


def _namespace_upstream(ctx: CheckContext) -> str:
    # Imported here: the stage modules import this module for their check= lines.
    from stagegraph.stages.kubernetes_initialize import InitializeOutputs

    return ctx.upstream.get(InitializeOutputs).namespace


def kubernetes_version_preflight(ctx: CheckContext) -> None:
    """Before the first cluster stage: refuse a cluster newer than kubernetes.max_version."""
    if ctx.pins is None:
        raise DeployError(f"stage {ctx.stage}: the Kubernetes version preflight needs the lockfile's pins")
    max_version = ctx.pins.version("kubernetes.max_version")
    with connect(_target(ctx)) as client:
        shown = checks.kubernetes_version_check(client, max_version)
    ctx.line(f"cluster runs Kubernetes {shown} (newest supported: {max_version})")


def namespace_check(ctx: CheckContext) -> None:
    """03: the platform namespace exists."""
    namespace = str(getattr(ctx.outputs, "namespace", ""))
    with connect(_target(ctx)) as client:
        checks.namespace_exists(client, namespace)


def ingress_check(ctx: CheckContext) -> None:
    """04: Traefik's LoadBalancer service has an address."""
    namespace = _namespace_upstream(ctx)
    with connect(_target(ctx)) as client:
        address = checks.wait_for(
            lambda: checks.service_address(client, namespace, INGRESS_SERVICE), ADDRESS_WAIT_S
        )
    ctx.line(f"ingress load balancer address: {address}")


def hub_check(ctx: CheckContext) -> None:
    """07: the JupyterHub hub deployment is ready."""
    namespace = _namespace_upstream(ctx)
    with connect(_target(ctx)) as client:
        checks.wait_for(lambda: checks.deployment_ready(client, namespace, HUB_DEPLOYMENT), ROLLOUT_WAIT_S)


def kuberhealthy_check(ctx: CheckContext) -> None:
    """10: the Kuberhealthy operator is ready (nothing to check when health checks are off)."""
    if not getattr(ctx.outputs, "crds", None):
        return
    namespace = str(getattr(ctx.outputs, "namespace", ""))
    with connect(_target(ctx)) as client:
        checks.wait_for(
            lambda: checks.deployment_ready(client, namespace, KUBERHEALTHY_DEPLOYMENT), ROLLOUT_WAIT_S
        )
