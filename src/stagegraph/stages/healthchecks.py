"""11-kubernetes-kuberhealthy-healthchecks: one Kuberhealthy HTTP check per enabled service.

Each check is a KuberhealthyCheck running Kuberhealthy's http-check image against the
service's public URL, so it also proves the ingress, DNS and certificate in front of it.
With a self-signed certificate a probe through the public URL can only fail TLS
verification, so the checks probe the in-cluster address of each service instead
(`svc_addresses`, the table behind 07's `internal_urls`).

The URLs are rendered from the config (https://<domain> + the service's path), not filled
in at deploy time from the outputs of 07-kubernetes-services: that keeps the render pure
and complete, so the files in `manifests/` are exactly what is applied (`kubectl apply -f`
works on them by hand, `git diff` of a render shows every check that changes, and the
golden files pin them). The stage still reads 07's typed `urls` output: before applying,
the driver verifies that every check probes a service 07 reports, at the address 07
reports, and refuses with a one-line error if the two ever disagree.

`monitoring.healthchecks.enabled: false` (the default) renders no check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from stagegraph.driver import StageContext
from stagegraph.errors import DeployError, RenderError
from stagegraph.kube.driver import ManifestDriver, Source
from stagegraph.kube.render import MANAGED_BY, Manifest, name_ref, sandbox_twins, yaml_file
from stagegraph.stage import RenderContext, Rendered, Stage, StageIO, Upstream
from stagegraph.stages.common import ClusterNamespaceInputs
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.kuberhealthy import KuberhealthyOutputs
from stagegraph.stages.services import ServicesOutputs
from stagegraph.stages.svc_addresses import internal_url

NAME = "11-kubernetes-kuberhealthy-healthchecks"
SERVICE_LABEL = "stagegraph/service"
URL_ANNOTATION = "stagegraph/service-url"

#: service -> (path of its public URL, path probed under it). The first part mirrors the
#: `urls` output of 07-kubernetes-services (verified at deploy time); the probe is an
#: endpoint that answers 200 without logging in.
SERVICES: dict[str, tuple[str, str]] = {
    "jupyterhub": ("/", "hub/api/"),
    "conda_store": ("/conda-store/", "api/v1/"),
    "dask_gateway": ("/gateway/", "api/version"),
    "argo_workflows": ("/argo/", ""),
    "grafana": ("/monitoring/", "api/health"),
    "jhub_apps": ("/services/japps/", ""),
    # The realm's discovery document: 200 without a login once 06 created the realm.
    "keycloak": ("/auth/", "realms/nebari/.well-known/openid-configuration"),
}


class HealthchecksInputs(ClusterNamespaceInputs):
    urls: dict[str, str] = Field(description="Public URL of each service, from 07-kubernetes-services.")
    internal_urls: dict[str, str] = Field(
        default_factory=dict, description="In-cluster URL of each service, from 07-kubernetes-services."
    )


class HealthchecksOutputs(StageIO):
    checks: list[str] = Field(description="Names of the Kuberhealthy checks deployed.")


def connect(up: Upstream) -> HealthchecksInputs:
    infra, kh, services = up.get(InfrastructureOutputs), up.get(KuberhealthyOutputs), up.get(ServicesOutputs)
    return HealthchecksInputs(
        kubeconfig_path=infra.kubeconfig_path,
        kube_context=infra.kube_context,
        namespace=kh.namespace,
        urls=services.urls,
        internal_urls=services.internal_urls,
    )


def enabled_services(ctx: RenderContext) -> list[str]:
    """The services the platform runs, by the same switches 07-kubernetes-services reads."""
    cfg = ctx.config
    names = ["keycloak", "jupyterhub", "conda_store", "dask_gateway"]
    if cfg.argo_workflows.enabled:
        names.append("argo_workflows")
    if cfg.monitoring.enabled:
        names.append("grafana")
    if cfg.jhub_apps.enabled:
        names.append("jhub_apps")
    return names


def check_name(service: str) -> str:
    return f"{service.replace('_', '-')}-http-check"


def http_check(service: str, base_url: str, namespace: str, image: str) -> Manifest:
    probe = base_url + SERVICES[service][1]
    env = {
        "CHECK_URL": probe,
        "COUNT": "3",
        "SECONDS": "5",
        "PASSING_PERCENT": "100",
        "EXPECTED_STATUS_CODE": "200",
    }
    return {
        "apiVersion": "comcast.github.io/v1",
        "kind": "KuberhealthyCheck",
        "metadata": {
            "name": check_name(service),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "kuberhealthy-http-check",
                **MANAGED_BY,
                SERVICE_LABEL: service,
            },
            "annotations": {URL_ANNOTATION: base_url},
        },
        "spec": {
            "runInterval": "5m",
            "timeout": "10m",
            "podSpec": {
                "containers": [
                    {
                        "name": "main",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "env": [{"name": k, "value": v} for k, v in env.items()],
                        "resources": {"requests": {"cpu": "15m", "memory": "15Mi"}, "limits": {"cpu": "25m"}},
                    }
                ],
                "restartPolicy": "Never",
            },
        },
    }


def manifests(ctx: RenderContext) -> dict[str, Manifest]:
    if not ctx.config.monitoring.healthchecks.enabled:
        return {}
    domain = ctx.config.domain
    if not domain:
        raise RenderError(
            f"stage {NAME}: monitoring.healthchecks.enabled needs domain set (each check probes "
            "https://<domain>/...); set domain in nebari-config.yaml or disable the health checks"
        )
    image = ctx.pins.image("kuberhealthy_http_check").ref
    in_cluster = ctx.config.certificate.type == "self-signed"
    out = {}
    for service in enabled_services(ctx):
        if in_cluster:
            base = internal_url(service, ctx.config.namespace)
        else:
            base = f"https://{domain}{SERVICES[service][0]}"
        out[f"manifests/{check_name(service)}.yaml"] = http_check(service, base, ctx.config.namespace, image)
    return out


README = """# {stage}

Kuberhealthy HTTP checks, one per enabled service, as Kubernetes manifests. `doit deploy`
applies them with server-side apply (after 10-kubernetes-kuberhealthy installed the CRDs).
By hand, with the kubeconfig of the cluster:

    kubectl apply --server-side -f manifests/

{state}
"""


def render(ctx: RenderContext) -> Rendered:
    objects = manifests(ctx)
    state = (
        "Checks: " + ", ".join(sorted(o["metadata"]["name"] for o in objects.values()))
        if objects
        else "Disabled (monitoring.healthchecks.enabled is false): nothing to apply."
    )
    files: dict[str, dict[str, Any] | str] = {"README.md": README.format(stage=NAME, state=state)}
    files.update({path: yaml_file(NAME, obj) for path, obj in objects.items()})
    if ctx.sandbox:
        outputs = {"checks": ([name_ref(p) for p in sorted(objects)], "Names of the Kuberhealthy checks.")}
        files.update(sandbox_twins(ctx, NAME, objects, outputs, HealthchecksInputs))
    return files


def verify_urls(ctx: StageContext, docs: Sequence[Source]) -> None:
    """Every check probes a service 07 runs, at the address 07 reports."""
    public = ctx.variables.get("urls") or {}
    internal = ctx.variables.get("internal_urls") or {}
    for src, manifest in docs:
        meta = manifest.get("metadata", {})
        service = meta.get("labels", {}).get(SERVICE_LABEL)
        base = meta.get("annotations", {}).get(URL_ANNOTATION)
        if service is None or base is None:
            continue  # not one of ours (a hand-added check): nothing to compare
        # A probe of an in-cluster address (self-signed certificate) answers to internal_urls.
        urls = internal if base.startswith("http://") and ".svc:" in base else public
        if urls.get(service) != base:
            reported = urls.get(service, "no such service")
            raise DeployError(
                f"{ctx.stage_dir.name}/{src}: checks {service} at {base} but 07-kubernetes-services "
                f"reports {reported}; re-render both with `doit render` and deploy 07 first"
            )


def outputs(ctx: StageContext, applied: Sequence[Manifest]) -> dict[str, Any]:
    """The same outputs as the sandbox twin's, from what was applied to the cluster."""
    return {"checks": sorted(m["metadata"]["name"] for m in applied if m.get("kind") == "KuberhealthyCheck")}


STAGE = Stage(
    name=NAME,
    description="Kuberhealthy HTTP checks, one per enabled service",
    render=render,
    depends_on=("02-infrastructure", "07-kubernetes-services", "10-kubernetes-kuberhealthy"),
    config_sections=(
        "namespace",
        "domain",
        "certificate",
        "monitoring.healthchecks",
        "monitoring.enabled",
        "argo_workflows.enabled",
        "jhub_apps.enabled",
    ),
    pins=("terraform", "images.kuberhealthy_http_check"),
    inputs=HealthchecksInputs,
    connect=connect,
    outputs=HealthchecksOutputs,
    mock_outputs=HealthchecksOutputs(checks=[]),
    priority=110,
    kind="manifests",
    driver=ManifestDriver(outputs=outputs, verify=verify_urls),
)
