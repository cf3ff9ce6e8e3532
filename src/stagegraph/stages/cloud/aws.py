"""02-infrastructure on AWS: VPC (or your subnets), EKS, node groups, IRSA, EFS.

Follows Nebari's aws template: a VPC with one public subnet per zone, an EKS cluster, one
managed node group per config group (labelled `dedicated=<group>` and selected by
`eks.amazonaws.com/nodegroup`), the EBS CSI and CoreDNS add-ons on the general group, an
OIDC provider, an ECR repository for user images, and EFS for shared storage when
`storage.type: efs`. Unlike Nebari, the
cluster autoscaler gets its own IAM role through IRSA instead of rights on every node.
"""

from __future__ import annotations

from typing import Any

from stagegraph.schema import cloud_names
from stagegraph.stage import RenderContext
from stagegraph.stages.cloud import aws_iam, aws_network, cluster, names, registry
from stagegraph.stages.cloud.state import aws_provider
from stagegraph.stages.cloud.versions import cluster_version
from stagegraph.stages.common import header
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"


def render(ctx: RenderContext) -> dict[str, Any]:
    cfg = ctx.config
    aws = names.aws_section(cfg)
    name = names.cluster_name(cfg)
    m = TerraformModule(sandbox=ctx.sandbox, comment=header("02-infrastructure"))
    cluster.require(ctx, m, "aws")
    aws_provider(ctx, m)
    version = cluster_version(
        "aws", aws, ctx.pins.version("kubernetes.max_version"), "lockfiles/versions.yaml"
    )
    m.data("aws_partition", "current", {})
    subnets, security_group = aws_network.network(ctx, m, name)
    cluster_role, cluster_ready = aws_iam.role(
        m,
        "cluster",
        name + cloud_names.CLUSTER_ROLE_SUFFIX,
        "eks.amazonaws.com",
        aws.permissions_boundary,
        aws_iam.CLUSTER_POLICIES,
    )
    endpoint_access = aws.eks_endpoint_access or "public"
    body: dict[str, Any] = {
        "name": name,
        "role_arn": cluster_role.attr("arn", sandbox="rehearsal"),
        "version": version,
        "vpc_config": [
            {
                "subnet_ids": subnets,
                "security_group_ids": [security_group],
                "endpoint_public_access": endpoint_access != "private",
                "endpoint_private_access": endpoint_access != "public",
                "public_access_cidrs": literal(list(aws.eks_public_access_cidrs or ["0.0.0.0/0"])),
            }
        ],
        # API access entries, with the creator as admin: the exec token of whoever deployed
        # stage 02 works for the later stages without editing aws-auth.
        "access_config": [
            {"authentication_mode": "API_AND_CONFIG_MAP", "bootstrap_cluster_creator_admin_permissions": True}
        ],
        "depends_on": cluster_ready,
    }
    if aws.eks_kms_arn:
        body["encryption_config"] = [
            {"provider": [{"key_arn": literal(aws.eks_kms_arn)}], "resources": ["secrets"]}
        ]
    eks = m.resource("aws_eks_cluster", "main", body)
    node_role, node_ready = aws_iam.role(
        m,
        "node",
        name + cloud_names.NODE_ROLE_SUFFIX,
        "ec2.amazonaws.com",
        aws.permissions_boundary,
        aws_iam.NODE_POLICIES,
    )
    groups = _node_groups(ctx, m, eks, (node_role, node_ready), subnets, name)
    for addon, values in (
        (
            "aws-ebs-csi-driver",
            {
                "controller": {"nodeSelector": {NODEGROUP_LABEL: "general"}},
                "defaultStorageClass": {"enabled": True},
            },
        ),
        ("coredns", {"nodeSelector": {NODEGROUP_LABEL: "general"}}),
    ):
        m.resource(
            "aws_eks_addon",
            addon.replace("-", "_"),
            {
                "cluster_name": eks.attr("name"),
                "addon_name": addon,
                "resolve_conflicts_on_create": "OVERWRITE",
                "resolve_conflicts_on_update": "OVERWRITE",
                "configuration_values": f"${{jsonencode({cluster.hcl(values)})}}",
                "depends_on": depends(*groups),
            },
        )
    autoscaler_role = aws_iam.irsa(ctx, m, eks, name)
    registry_url = registry.ecr(ctx, m)
    nfs = aws_network.efs(ctx, m, name, subnets, security_group) if cfg.storage.type == "efs" else None
    endpoint = eks.attr("endpoint", sandbox=cluster.REHEARSAL_ENDPOINT)
    ca = eks.attr("certificate_authority[0].data", sandbox=cluster.REHEARSAL_CA)
    command = ["aws", "eks", "get-token", "--cluster-name", name, "--region", literal(aws.region)]
    cluster.finish(
        ctx,
        m,
        name=name,
        endpoint=endpoint,
        ca=ca,
        command=command,
        node_selectors=cluster.selectors(NODEGROUP_LABEL, aws.node_groups),
        extra={
            "autoscaler_role_arn": (autoscaler_role, "IAM role the cluster autoscaler assumes (IRSA)."),
            "nfs_endpoint": (nfs, "DNS name of the EFS file system (null: no EFS)."),
            "container_registry": (registry_url, "ECR repository for user images (nodes pull from it)."),
        },
    )
    return m.document()


def _node_groups(
    ctx: RenderContext,
    m: TerraformModule,
    eks: Ref,
    shared_role: tuple[Ref, list[str]],
    subnets: Any,
    name: str,
) -> list[Ref]:
    aws = names.aws_section(ctx.config)
    out = []
    for group_name, group in sorted(aws.node_groups.items()):
        role, ready = shared_role
        if group.permissions_boundary and group.permissions_boundary != aws.permissions_boundary:
            # A group with a boundary of its own needs a node role of its own to carry it.
            role, ready = aws_iam.role(
                m,
                f"node_{literal(group_name).replace('-', '_')}",
                cloud_names.group_node_role(name, group_name),
                "ec2.amazonaws.com",
                group.permissions_boundary,
                aws_iam.NODE_POLICIES,
            )
        group_subnets = (
            [f"${{element({subnets[2:-1]}, 0)}}"]
            if isinstance(subnets, str) and group.single_subnet
            else (subnets[:1] if group.single_subnet else subnets)
        )
        group_taints = cluster.taints(group_name, group)
        tags = {
            "k8s.io/cluster-autoscaler/enabled": "true",
            f"k8s.io/cluster-autoscaler/{name}": "owned",
            "k8s.io/cluster-autoscaler/node-template/label/dedicated": literal(group_name),
        }
        for t in group_taints:
            tags[f"k8s.io/cluster-autoscaler/node-template/taint/{t['key']}"] = literal(
                f"{t['value'] or ''}:{t['effect']}"
            )
        labels = {"dedicated": literal(group_name)}
        if group.gpu:
            labels["nvidia.com/gpu.present"] = "true"
        ref = m.resource(
            "aws_eks_node_group",
            literal(group_name).replace("-", "_"),
            {
                "cluster_name": eks.attr("name"),
                "node_group_name": literal(group_name),
                "node_role_arn": role.attr("arn", sandbox="rehearsal"),
                "subnet_ids": group_subnets,
                "instance_types": [literal(group.instance)],
                "capacity_type": "SPOT" if group.spot else "ON_DEMAND",
                "ami_type": "AL2023_x86_64_NVIDIA" if group.gpu else "AL2023_x86_64_STANDARD",
                "disk_size": 50,
                "scaling_config": [
                    {
                        "min_size": group.min_nodes,
                        "desired_size": group.min_nodes,
                        "max_size": group.max_nodes,
                    }
                ],
                "labels": labels,
                "taint": [
                    {
                        "key": literal(t["key"]),
                        "value": literal(t["value"]),
                        "effect": cluster.EFFECTS[t["effect"]],
                    }
                    for t in group_taints
                ],
                "tags": tags,
                # The autoscaler owns desired_size once the group exists.
                "lifecycle": [{"ignore_changes": ["scaling_config[0].desired_size"]}],
                # Nodes need their role's policies to join; EKS needs them to delete nodes.
                "depends_on": ready,
            },
        )
        out.append(ref)
    return out
