"""10-kubernetes-kuberhealthy: the Kuberhealthy CRDs and operator, as manifests.

As in Nebari's manual deploy notes this stage is plain YAML, not Terraform: `crds/` holds
the KuberhealthyCheck, KuberhealthyState and KuberhealthyJob definitions and `manifests/`
the operator (service account, cluster role and binding, config, deployment, service) in
the platform namespace. stagegraph applies them with server-side apply; by hand,
`kubectl apply --server-side -f crds/ && kubectl apply --server-side -f manifests/`.

The CRDs are written here rather than taken from the Helm chart: minimal but valid
apiextensions.k8s.io/v1 definitions whose spec and status keep unknown fields, which is
what the operator needs and what stays valid across Kuberhealthy 2.x releases.

`monitoring.healthchecks.enabled: false` (the default) renders nothing to apply; the
outputs stay valid (no CRDs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from stagegraph.driver import StageContext
from stagegraph.kube.driver import ManifestDriver
from stagegraph.kube.render import MANAGED_BY, Manifest, name_ref, sandbox_twins, yaml_file
from stagegraph.stage import RenderContext, Rendered, Stage, StageIO, Upstream
from stagegraph.stages.common import ClusterNamespaceInputs
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.stages.stage_checks import kuberhealthy_check

NAME = "10-kubernetes-kuberhealthy"
GROUP = "comcast.github.io"
APP = "kuberhealthy"
PORT = 8080

#: (plural, singular, kind, short name) of each custom resource the operator serves.
CRDS = (
    ("khchecks", "khcheck", "KuberhealthyCheck", "khc"),
    ("khstates", "khstate", "KuberhealthyState", "khs"),
    ("khjobs", "khjob", "KuberhealthyJob", "khj"),
)


class KuberhealthyOutputs(StageIO):
    namespace: str = Field(description="Namespace of the Kuberhealthy operator.")
    crds: list[str] = Field(description="Custom resources the operator serves (empty when disabled).")


def connect(up: Upstream) -> ClusterNamespaceInputs:
    infra, init = up.get(InfrastructureOutputs), up.get(InitializeOutputs)
    return ClusterNamespaceInputs(
        kubeconfig_path=infra.kubeconfig_path, kube_context=infra.kube_context, namespace=init.namespace
    )


def _labels(**extra: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": APP, **MANAGED_BY, **extra}


def crd(plural: str, singular: str, kind: str, short: str) -> Manifest:
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": _labels()},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": plural,
                "singular": singular,
                "kind": kind,
                "listKind": f"{kind}List",
                "shortNames": [short],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": open_object, "status": open_object},
                        }
                    },
                }
            ],
        },
    }


def operator(namespace: str, image: str) -> dict[str, Manifest]:
    """The operator's objects by file name (the number orders the apply)."""
    meta = {"name": APP, "namespace": namespace, "labels": _labels()}
    # Cluster-scoped names carry the namespace: two platforms may share a cluster.
    cluster_name = f"{APP}-{namespace}"
    every = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    config = f'listenAddress: ":{PORT}"\nenableForceMaster: false\nlogLevel: "info"\nenableInflux: false\n'
    return {
        "manifests/00-serviceaccount.yaml": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        "manifests/10-clusterrole.yaml": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": cluster_name, "labels": _labels()},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": every},
                {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["namespaces", "nodes"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": every},
                {"apiGroups": [GROUP], "resources": [plural for plural, *_ in CRDS], "verbs": ["*"]},
            ],
        },
        "manifests/11-clusterrolebinding.yaml": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": cluster_name, "labels": _labels()},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_name},
            "subjects": [{"kind": "ServiceAccount", "name": APP, "namespace": namespace}],
        },
        "manifests/20-configmap.yaml": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {"kuberhealthy.yaml": config},
        },
        "manifests/30-deployment.yaml": _deployment(meta, namespace, image),
        "manifests/40-service.yaml": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": APP},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    }


def _deployment(meta: dict[str, Any], namespace: str, image: str) -> Manifest:
    probe = {"tcpSocket": {"port": PORT}, "initialDelaySeconds": 2, "periodSeconds": 4, "failureThreshold": 3}
    env = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        # Checks report back here; the operator's default assumes a `kuberhealthy` namespace.
        {
            "name": "KH_EXTERNAL_REPORTING_URL",
            "value": f"http://{APP}.{namespace}.svc.cluster.local/externalCheckStatus",
        },
    ]
    container = {
        "name": APP,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/app/kuberhealthy"],
        "ports": [{"name": "http", "containerPort": PORT}],
        "env": env,
        "volumeMounts": [{"name": "config", "mountPath": "/etc/config/"}],
        "livenessProbe": probe,
        "readinessProbe": probe,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 999, "allowPrivilegeEscalation": False},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP, **_labels()}},
                "spec": {
                    "serviceAccountName": APP,
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": APP}}],
                },
            },
        },
    }


def manifests(ctx: RenderContext) -> dict[str, Manifest]:
    """Every object of the stage by file name; empty when health checks are disabled."""
    if not ctx.config.monitoring.healthchecks.enabled:
        return {}
    out = {
        f"crds/{plural}.yaml": crd(plural, singular, kind, short) for plural, singular, kind, short in CRDS
    }
    out.update(operator(ctx.config.namespace, ctx.pins.image("kuberhealthy").ref))
    return out


README = """# {stage}

Kuberhealthy, as Kubernetes manifests (not Terraform). `doit deploy` applies them with
server-side apply. By hand, with the kubeconfig of the cluster:

    kubectl apply --server-side -f crds/
    kubectl apply --server-side -f manifests/

{state}
"""


def render(ctx: RenderContext) -> Rendered:
    objects = manifests(ctx)
    state = (
        "Enabled by monitoring.healthchecks.enabled."
        if objects
        else "Disabled (monitoring.healthchecks.enabled is false): nothing to apply."
    )
    files: dict[str, dict[str, Any] | str] = {"README.md": README.format(stage=NAME, state=state)}
    files.update({path: yaml_file(NAME, obj) for path, obj in objects.items()})
    if ctx.sandbox:
        crd_paths = [p for p in sorted(objects) if p.startswith("crds/")]
        outputs = {
            "namespace": ("${var.namespace}", "Namespace of the Kuberhealthy operator."),
            "crds": ([name_ref(p) for p in crd_paths], "Custom resources the operator serves."),
        }
        files.update(sandbox_twins(ctx, NAME, objects, outputs, ClusterNamespaceInputs))
    return files


def outputs(ctx: StageContext, applied: Sequence[Manifest]) -> dict[str, Any]:
    """The same outputs as the sandbox twin's, from what was applied to the cluster."""
    crds = [m["metadata"]["name"] for m in applied if m.get("kind") == "CustomResourceDefinition"]
    return {"namespace": ctx.variables["namespace"], "crds": crds}


STAGE = Stage(
    name=NAME,
    description="Kuberhealthy operator and CRDs (manifests, server-side apply)",
    render=render,
    depends_on=("02-infrastructure", "03-kubernetes-initialize"),
    config_sections=("namespace", "monitoring.healthchecks"),
    pins=("terraform", "images.kuberhealthy"),
    inputs=ClusterNamespaceInputs,
    connect=connect,
    outputs=KuberhealthyOutputs,
    mock_outputs=KuberhealthyOutputs(namespace="dev", crds=[]),
    priority=100,
    kind="manifests",
    driver=ManifestDriver(outputs=outputs),
    check=kuberhealthy_check,
)
