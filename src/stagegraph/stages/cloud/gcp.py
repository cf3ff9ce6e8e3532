"""02-infrastructure on GCP: a GKE cluster, one node pool per config group, a registry.

Follows Nebari's gcp template (network and subnetwork by name, VPC-native ranges, private
cluster and authorized networks when set, workload identity), with GPU drivers installed by
GKE itself (`gpu_driver_installation_config`) instead of a driver DaemonSet in stage 03.
Node pools are selected by GKE's own `cloud.google.com/gke-nodepool` label.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.cloud import cluster, names, registry
from stagegraph.stages.cloud.versions import cluster_version
from stagegraph.stages.common import header
from stagegraph.tfjson import Ref, TerraformModule, literal

NODEPOOL_LABEL = "cloud.google.com/gke-nodepool"
_NODE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/storage.objectViewer",
    "roles/artifactregistry.reader",
)


def render(ctx: RenderContext) -> dict[str, Any]:
    cfg = ctx.config
    gcp = names.gcp_section(cfg)
    name = names.cluster_name(cfg)
    m = TerraformModule(sandbox=ctx.sandbox, comment=header("02-infrastructure"))
    cluster.require(ctx, m, "google")
    m.provider("google", {"project": literal(gcp.project), "region": literal(gcp.region)})
    version = cluster_version(
        "gcp", gcp, ctx.pins.version("kubernetes.max_version"), "lockfiles/versions.yaml"
    )
    account = m.resource(
        "google_service_account",
        "nodes",
        # 6-30 characters, not ending with a hyphen (a cut may leave one).
        {"account_id": f"{name}-nodes"[:30].rstrip("-"), "display_name": f"Nebari {name} node pools"},
    )
    member = account.attr("member", sandbox=f"serviceAccount:{name}-nodes@rehearsal")
    for role in _NODE_ROLES:
        m.resource(
            "google_project_iam_member",
            f"nodes_{role.split('/')[1].replace('.', '_')}",
            {"project": literal(gcp.project), "role": role, "member": member},
        )
    body: dict[str, Any] = {
        "name": name,
        "location": literal(gcp.region),
        "min_master_version": version,
        "deletion_protection": False,
        # Node pools are separate resources: GKE's default pool is removed at once.
        "remove_default_node_pool": True,
        "initial_node_count": 1,
        "release_channel": [{"channel": literal(gcp.release_channel)}],
        "networking_mode": literal(gcp.networking_mode),
        "network": literal(gcp.network),
        "subnetwork": literal(gcp.subnetwork),
        "workload_identity_config": [{"workload_pool": f"{literal(gcp.project)}.svc.id.goog"}],
        # No client certificate (Nebari issued one): clients get tokens from gcloud. Written
        # out so the CA the kubeconfig needs is read from a block the config declares.
        "master_auth": [{"client_certificate_config": [{"issue_client_certificate": False}]}],
        "lifecycle": [{"ignore_changes": ["node_locations"]}],
    }
    if gcp.availability_zones:
        body["node_locations"] = literal(list(gcp.availability_zones))
    if gcp.ip_allocation_policy is not None:
        body["ip_allocation_policy"] = [literal(gcp.ip_allocation_policy.model_dump())]
    if gcp.master_authorized_networks_config is not None:
        body["master_authorized_networks_config"] = [
            {"cidr_blocks": [literal(gcp.master_authorized_networks_config.model_dump())]}
        ]
    if gcp.private_cluster_config is not None:
        body["private_cluster_config"] = [literal(gcp.private_cluster_config.model_dump())]
    gke = m.resource("google_container_cluster", "main", body)
    for group_name, group in sorted(gcp.node_groups.items()):
        _pool(ctx, m, gke, group_name, group, version, account)
    registry_url = registry.artifact_registry(ctx, m)
    endpoint = "https://" + gke.attr("endpoint", sandbox=cluster.REHEARSAL_ENDPOINT[len("https://") :])
    ca = gke.attr("master_auth[0].cluster_ca_certificate", sandbox=cluster.REHEARSAL_CA)
    cluster.finish(
        ctx,
        m,
        name=name,
        endpoint=endpoint,
        ca=ca,
        command=["gke-gcloud-auth-plugin"],
        node_selectors=cluster.selectors(NODEPOOL_LABEL, gcp.node_groups),
        extra={
            "autoscaler_role_arn": (None, "GKE scales node pools itself: no autoscaler identity."),
            "nfs_endpoint": (None, "No managed NFS on GCP: shared storage is the in-cluster NFS server."),
            "container_registry": (registry_url, "Artifact Registry repository for user images."),
        },
    )
    return m.document()


def _pool(
    ctx: RenderContext, m: TerraformModule, gke: Ref, group_name: str, group: Any, version: str, account: Ref
) -> None:
    gcp = names.gcp_section(ctx.config)
    node_config: dict[str, Any] = {
        "machine_type": literal(group.instance),
        "preemptible": group.preemptible,
        "service_account": account.attr("email", sandbox=f"{group_name}@rehearsal"),
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "labels": literal(dict(group.labels)),
        "metadata": {"disable-legacy-endpoints": "true"},
        "tags": literal(list(gcp.tags or [])),
        "taint": [
            {
                "key": literal(t["key"]),
                "value": literal(t["value"] or ""),
                "effect": cluster.EFFECTS[t["effect"]],
            }
            for t in cluster.taints(group_name, group)
        ],
        "guest_accelerator": [
            {
                "type": literal(acc.name),
                "count": acc.count,
                # GKE installs the NVIDIA driver itself; Nebari ran its own installer DaemonSet.
                "gpu_driver_installation_config": [{"gpu_driver_version": "DEFAULT"}],
            }
            for acc in group.guest_accelerators
        ],
        "workload_metadata_config": [{"mode": "GKE_METADATA"}],
    }
    m.resource(
        "google_container_node_pool",
        literal(group_name).replace("-", "_"),
        {
            "name": literal(group_name),
            "location": literal(gcp.region),
            "cluster": gke.attr("name"),
            "version": version,
            "initial_node_count": group.min_nodes,
            "autoscaling": [{"min_node_count": group.min_nodes, "max_node_count": group.max_nodes}],
            # Release channels upgrade nodes themselves, and GKE requires auto_upgrade then.
            "management": [{"auto_repair": True, "auto_upgrade": gcp.release_channel != "UNSPECIFIED"}],
            "node_config": [node_config],
        },
    )
