"""02-infrastructure on Azure: a resource group, an AKS cluster, its node pools, a registry.

Follows Nebari's azure template (the general group is AKS's default pool, the others are
user pools; nodes labelled `azure-node-pool=<group>`; your subnet, network profile, private
cluster, workload identity and policy add-on when set). One change: local accounts are off
and Entra ID RBAC is on, with the deploying identity as cluster admin, so the kubeconfig
stage 02 writes needs no client key (kubelogin issues tokens from your `az login`).
"""

from __future__ import annotations

from typing import Any

from stagegraph.schema.cloud_names import AZURE_NODE_GROUP_SUFFIX
from stagegraph.stage import RenderContext
from stagegraph.stages.cloud import cluster, names, registry
from stagegraph.stages.cloud.versions import cluster_version
from stagegraph.stages.common import header
from stagegraph.tfjson import TerraformModule, literal

NODEPOOL_LABEL = "azure-node-pool"


def _taint_strings(group_name: str, group: Any) -> list[str]:
    out = []
    for t in cluster.taints(group_name, group):
        value = f"={t['value']}" if t["value"] else ""
        out.append(literal(f"{t['key']}{value}:{t['effect']}"))
    return out


def render(ctx: RenderContext) -> dict[str, Any]:
    cfg = ctx.config
    az = names.azure_section(cfg)
    name = names.cluster_name(cfg)
    m = TerraformModule(sandbox=ctx.sandbox, comment=header("02-infrastructure"))
    cluster.require(ctx, m, "azurerm")
    m.provider("azurerm", {"features": [{}]})
    version = cluster_version(
        "azure", az, ctx.pins.version("kubernetes.max_version"), "lockfiles/versions.yaml"
    )
    tags = literal(dict(az.tags or {}))
    group_name_rg = literal(names.azure_resource_group(cfg))
    client = m.data("azurerm_client_config", "current", {})
    rg = m.resource(
        "azurerm_resource_group",
        "main",
        {"name": group_name_rg, "location": literal(az.region), "tags": tags},
    )
    groups = dict(sorted(az.node_groups.items()))
    # AKS needs a system pool: general, as in Nebari (the first group otherwise).
    first = "general" if "general" in groups else next(iter(groups))
    general = groups[first]
    default_pool: dict[str, Any] = {
        "name": literal(first),
        "vm_size": literal(general.instance),
        "auto_scaling_enabled": True,
        "min_count": general.min_nodes,
        "max_count": general.max_nodes,
        "orchestrator_version": version,
        "node_labels": {NODEPOOL_LABEL: literal(first)},
        "vnet_subnet_id": literal(az.vnet_subnet_id),
        "max_pods": az.max_pods,
        "tags": tags,
        "temporary_name_for_rotation": f"{literal(first)[:9]}tmp",
    }
    body: dict[str, Any] = {
        "name": name,
        "location": rg.attr("location"),
        "resource_group_name": rg.attr("name"),
        "node_resource_group": f"{group_name_rg}{AZURE_NODE_GROUP_SUFFIX}",
        "dns_prefix": "Nebari",
        "kubernetes_version": version,
        "sku_tier": "Free",
        "private_cluster_enabled": az.private_cluster_enabled,
        "oidc_issuer_enabled": az.workload_identity_enabled,
        "workload_identity_enabled": az.workload_identity_enabled,
        "azure_policy_enabled": az.azure_policy_enabled,
        "local_account_disabled": True,
        "azure_active_directory_role_based_access_control": [
            {
                "azure_rbac_enabled": True,
                "tenant_id": client.attr("tenant_id", sandbox="00000000-0000-0000-0000-000000000000"),
            }
        ],
        "api_server_access_profile": [{"authorized_ip_ranges": literal(list(az.authorized_ip_ranges or []))}],
        "default_node_pool": [default_pool],
        "identity": [{"type": "SystemAssigned"}],
        "tags": tags,
        "lifecycle": [{"ignore_changes": ["default_node_pool[0].upgrade_settings"]}],
    }
    if az.network_profile:
        body["network_profile"] = [literal(dict(az.network_profile))]
    aks = m.resource("azurerm_kubernetes_cluster", "main", body)
    m.resource(
        "azurerm_role_assignment",
        "deployer_admin",
        {
            "scope": aks.attr("id", sandbox="rehearsal"),
            "role_definition_name": "Azure Kubernetes Service RBAC Cluster Admin",
            "principal_id": client.attr("object_id", sandbox="00000000-0000-0000-0000-000000000000"),
        },
    )
    for pool_name, group in groups.items():
        if pool_name == first:
            continue
        m.resource(
            "azurerm_kubernetes_cluster_node_pool",
            literal(pool_name).replace("-", "_"),
            {
                "name": literal(pool_name),
                "kubernetes_cluster_id": aks.attr("id", sandbox="rehearsal"),
                "vm_size": literal(group.instance),
                "mode": "User",  # only user pools scale to zero
                "auto_scaling_enabled": True,
                "min_count": group.min_nodes,
                "max_count": group.max_nodes,
                "orchestrator_version": version,
                "node_labels": {NODEPOOL_LABEL: literal(pool_name)},
                "node_taints": _taint_strings(pool_name, group),
                "vnet_subnet_id": literal(az.vnet_subnet_id),
                "max_pods": az.max_pods,
                "tags": tags,
            },
        )
    registry_url = registry.acr(ctx, m, rg, aks, tags)
    endpoint = aks.attr("kube_config[0].host", sandbox=cluster.REHEARSAL_ENDPOINT)
    ca = aks.attr("kube_config[0].cluster_ca_certificate", sandbox=cluster.REHEARSAL_CA)
    command = ["kubelogin", "get-token", "--login", "azurecli", "--server-id", cluster.AKS_AAD_SERVER_ID]
    cluster.finish(
        ctx,
        m,
        name=name,
        endpoint=endpoint,
        ca=ca,
        command=command,
        node_selectors=cluster.selectors(NODEPOOL_LABEL, az.node_groups),
        extra={
            "autoscaler_role_arn": (None, "AKS scales node pools itself: no autoscaler identity."),
            "nfs_endpoint": (None, "No managed NFS here: shared storage is the in-cluster NFS server."),
            "container_registry": (registry_url, "Azure container registry for user images (AKS pulls)."),
        },
    )
    return m.document()
