"""nebari-workflow-controller: an admission webhook that keeps Argo users in their lane.

Anyone allowed to submit Argo workflows could otherwise mount any volume of the
namespace, other users' home directories included. Of the options weighed in Nebari's
"RFD - Ways to Limit Argo Workflows Permissions - Mounting Volumes" (an operator that
kills offending workflows after the fact, template-only submission, a proxy in front of
argo-server, Pod Security admission...), only an admission controller refuses a workflow
BEFORE it exists, and it keeps every client (hera, the argo CLI) working. So:

- a ValidatingWebhookConfiguration sends every new Workflow to the controller, which
  rejects one that mounts a subPath of the shared volume outside the submitter's home and
  groups (it looks the submitter's groups up in Keycloak, read-only);
- a MutatingWebhookConfiguration lets it fill in the submitter's uid/gid and mounts;
- the controller runs from the pinned image `images.nebari_workflow_controller` (tag
  overridable by argo_workflows.nebari_workflow_controller.image_tag).

The webhooks reach the controller through the ingress at /argo/validate and /argo/mutate,
as Nebari does, so the controller needs no certificate of its own. With a public
certificate the API server calls the public URL; with a self-signed one (which it could not
verify) it calls Traefik's in-cluster Service and verifies the certificate 04 made for
that name (`certificate_ca`), so workflows are not refused for a TLS error.
"""

from __future__ import annotations

from stagegraph.stage import RenderContext
from stagegraph.stages.ingress import TRAEFIK_SERVICE, in_cluster_host
from stagegraph.stages.keycloak_configuration import READER_SECRET
from stagegraph.stages.svc_images import resolve_image
from stagegraph.stages.svc_kube import NAMESPACE, Route, deployment, manifest, secret_env, service
from stagegraph.tfjson import Ref, TerraformModule

NAME = "nebari-workflow-controller"
SERVICE = "wf-admission-controller"
PORT = 8080
#: Created by 06: a read-only Keycloak user the controller looks groups up with.
KEYCLOAK_READER_SECRET = READER_SECRET
#: Argo roles whose members may submit workflows (the viewer role may not).
VALID_ROLES = ("argo-admin", "argo-developer")


def workflow_controller(
    ctx: RenderContext, m: TerraformModule, nodes: dict[str, str], release: Ref, prefix: str
) -> list[Route]:
    """The controller and its webhooks; returns the routes to put before argo-server's."""
    account = manifest(
        m,
        "workflow_controller_service_account",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": f"{SERVICE}-sa", "namespace": NAMESPACE},
        },
    )
    role = manifest(
        m,
        "workflow_controller_role",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "nebari-workflow-viewer", "namespace": NAMESPACE},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                {
                    "apiGroups": ["argoproj.io"],
                    "resources": ["workflows", "cronworkflows"],
                    "verbs": ["get", "list"],
                },
            ],
        },
    )
    binding = manifest(
        m,
        "workflow_controller_role_binding",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "wf-admission-controller-viewer", "namespace": NAMESPACE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "nebari-workflow-viewer",
            },
            "subjects": [{"kind": "ServiceAccount", "name": f"{SERVICE}-sa", "namespace": NAMESPACE}],
        },
        after=(account, role),
    )
    roles = m.resource(
        "kubernetes_config_map",
        "valid_argo_roles",
        {
            "metadata": [{"name": "valid-argo-roles", "namespace": NAMESPACE}],
            "data": {"valid-argo-roles": "${jsonencode(local.valid_argo_roles)}"},
        },
    )
    m.local("valid_argo_roles", list(VALID_ROLES))
    section = ctx.config.argo_workflows.nebari_workflow_controller
    image = resolve_image(
        ctx,
        "nebari_workflow_controller",
        field="argo_workflows.nebari_workflow_controller.image_tag",
        tag=section.image_tag,
    )
    container = {
        "name": "admission-controller",
        "image": image.ref,
        "command": ["python", "-m", "nebari_workflow_controller"],
        "env": [
            secret_env("KEYCLOAK_USERNAME", KEYCLOAK_READER_SECRET, "username"),
            secret_env("KEYCLOAK_PASSWORD", KEYCLOAK_READER_SECRET, "password"),
            {"name": "KEYCLOAK_URL", "value": "${var.keycloak_internal_url}/"},
            {"name": "NAMESPACE", "value": NAMESPACE},
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
        "volumeMounts": [{"name": "valid-argo-roles", "mountPath": "/etc/argo", "readOnly": True}],
    }
    pod = manifest(
        m,
        "workflow_controller",
        deployment(
            NAME,
            [container],
            nodes["general"],
            volumes=[{"name": "valid-argo-roles", "configMap": {"name": "valid-argo-roles"}}],
            service_account=f"{SERVICE}-sa",
        ),
        after=(binding, roles, release),
    )
    svc = manifest(m, "workflow_controller_service", service(SERVICE, {"http": PORT}, app=NAME), after=(pod,))
    for kind, path, resources in (
        ("Validating", "validate", ["workflows"]),
        ("Mutating", "mutate", ["workflows", "cronworkflows"]),
    ):
        manifest(
            m,
            f"workflow_controller_{path}_webhook",
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": f"{kind}WebhookConfiguration",
                "metadata": {"name": f"{SERVICE}-${{var.namespace}}"},
                "webhooks": [
                    {
                        "name": f"wf-{path}-admission-controller.${{var.namespace}}.svc",
                        "admissionReviewVersions": ["v1", "v1beta1"],
                        "clientConfig": _client_config(ctx, f"/{prefix}/{path}"),
                        "rules": [
                            {
                                "apiGroups": ["argoproj.io"],
                                "apiVersions": ["v1alpha1"],
                                "operations": ["CREATE"],
                                "resources": resources,
                            }
                        ],
                        # Only this namespace's workflows; other namespaces are not Nebari's.
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                        "sideEffects": "None",
                        "failurePolicy": "Fail",
                    }
                ],
            },
            after=(svc,),
        )
    hosts = "Host(`${var.domain}`)"
    if _in_cluster(ctx):
        hosts = f"({hosts} || Host(`{in_cluster_host('${var.namespace}')}`))"
    return [
        Route(f"{hosts} && (Path(`/{prefix}/{path}`))", SERVICE, PORT, ("argo-stripprefix",))
        for path in ("validate", "mutate")
    ]


def _in_cluster(ctx: RenderContext) -> bool:
    return ctx.config.certificate.type == "self-signed"


def _client_config(ctx: RenderContext, path: str) -> dict[str, object]:
    if not _in_cluster(ctx):
        return {"url": f"https://${{var.domain}}{path}"}
    return {
        "service": {"name": TRAEFIK_SERVICE, "namespace": NAMESPACE, "port": 443, "path": path},
        "caBundle": "${var.certificate_ca}",
    }
