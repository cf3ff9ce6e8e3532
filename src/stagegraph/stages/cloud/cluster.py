"""What every cloud cluster stage shares: its typed connection, kubeconfig and outputs.

The later stages reach the cluster through a kubeconfig file, as they do on local and
existing. On a cloud, stage 02 writes that file itself and it holds no key: the cloud's own
CLI issues a short-lived token each time (`aws eks get-token`, `gke-gcloud-auth-plugin`,
`kubelogin`), so nothing secret lands on disk outside Terraform state.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from stagegraph.stage import RenderContext, StageIO
from stagegraph.tfjson import TerraformModule, literal

#: Where the cloud cluster's kubeconfig is written (inside the stage directory).
KUBECONFIG = "${abspath(path.module)}/kubeconfig"
#: Stand-ins for what only a real cloud answers (rehearsal twins have no computed values).
REHEARSAL_ENDPOINT = "https://rehearsal.invalid"
REHEARSAL_CA = "cmVoZWFyc2FsLWNh"  # base64 of "rehearsal-ca"
#: AKS's Entra ID server application, fixed by Microsoft for every tenant.
AKS_AAD_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"

EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
#: Nebari's taint for every group but general when the config leaves taints out.
DEFAULT_TAINT = {"key": "dedicated", "value": "nebari", "effect": "NoSchedule"}


class ClusterConnection(StageIO):
    """How a client reaches the cluster: endpoint, CA and the command that issues tokens."""

    endpoint: str = Field(description="HTTPS address of the Kubernetes API.")
    ca_certificate: str = Field(description="Base64 PEM of the cluster's certificate authority.")
    auth_command: list[str] = Field(description="Exec credential plugin: command and arguments.")


def taints(name: str, group: Any) -> list[dict[str, Any]]:
    """The group's taints; null means Nebari's default (none on general)."""
    if group.taints is not None:
        return [{"key": t.key, "value": t.value, "effect": t.effect} for t in group.taints]
    return [] if name == "general" else [dict(DEFAULT_TAINT)]


def selectors(label: str, groups: Any) -> dict[str, dict[str, str]]:
    return {name: {"key": label, "value": name} for name in sorted(groups)}


def kubeconfig(name: str, endpoint: str, ca: str, command: list[str]) -> str:
    """An HCL `yamlencode(...)` of a kubeconfig whose user runs `command` for a token."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": name,
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": command[0],
                        "args": command[1:],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }
    return f"${{yamlencode({json.dumps(doc, sort_keys=True)})}}"


def finish(
    ctx: RenderContext,
    m: TerraformModule,
    *,
    name: str,
    endpoint: str,
    ca: str,
    command: list[str],
    node_selectors: dict[str, dict[str, str]],
    extra: dict[str, tuple[Any, str]],
) -> None:
    """The kubeconfig file and the outputs every cloud's stage 02 gives."""
    m.resource(
        "local_file",
        "kubeconfig",
        {
            "filename": KUBECONFIG,
            "content": kubeconfig(name, endpoint, ca, command),
            "file_permission": "0600",
        },
    )
    m.output("kubeconfig_path", KUBECONFIG, "Kubeconfig of the cluster (exec auth, no keys).")
    m.output("kube_context", name, "Context in that kubeconfig.")
    m.output("cluster_name", name, "Name of the cluster.")
    m.output("node_selectors", literal(node_selectors), "Node selectors per node group.")
    m.output(
        "cluster",
        {"endpoint": endpoint, "ca_certificate": ca, "auth_command": command},
        "Endpoint, CA and token command of the cluster.",
    )
    for key, (value, description) in extra.items():
        m.output(key, value, description)


def require(ctx: RenderContext, m: TerraformModule, cloud_provider: str) -> None:
    m.require(
        ctx.pins.version("terraform"),
        {cloud_provider: ctx.pins.provider(cloud_provider), "local": ctx.pins.provider("local")},
    )


def hcl(value: Any) -> str:
    """A JSON value as an HCL expression (JSON objects and lists are valid HCL)."""
    return json.dumps(value, sort_keys=True)
