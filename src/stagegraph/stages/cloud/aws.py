"""02-infrastructure on AWS: VPC (or your subnets), EKS, node groups, IRSA, EFS.

Follows Nebari's aws template: a VPC with one public subnet per zone, an EKS cluster, one
managed node group per config group (labelled `dedicated=<group>` and selected by
`eks.amazonaws.com/nodegroup`), the EBS CSI and CoreDNS add-ons on the general group, an
OIDC provider, and EFS for shared storage when `storage.type: efs`. Unlike Nebari, the
cluster autoscaler gets its own IAM role through IRSA instead of rights on every node.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.cloud import cluster, names
from stagegraph.stages.cloud.state import aws_provider
from stagegraph.stages.cloud.versions import cluster_version
from stagegraph.stages.common import header
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
#: Service account the cluster autoscaler runs as (stage 03), trusted by its IRSA role.
AUTOSCALER_SA = "cluster-autoscaler"

_CLUSTER_POLICIES = ("AmazonEKSClusterPolicy", "AmazonEKSServicePolicy")
_NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "service-role/AmazonEBSCSIDriverPolicy",
)


def _policy_arn(m: TerraformModule, policy: str) -> str:
    partition = "aws" if m.sandbox else "${data.aws_partition.current.partition}"
    return f"arn:{partition}:iam::aws:policy/{policy}"


def _assume(service: str) -> str:
    return (
        '${jsonencode({Version = "2012-10-17", Statement = [{Action = "sts:AssumeRole", '
        f'Effect = "Allow", Principal = {{Service = "{service}"}}}}]}})}}'
    )


def _role(
    m: TerraformModule,
    name: str,
    role_name: str,
    service: str,
    boundary: str | None,
    policies: tuple[str, ...],
) -> tuple[Ref, list[str]]:
    """A role and its policy attachments; users wait for all of them (`depends_on`)."""
    role = m.resource(
        "aws_iam_role",
        name,
        {
            "name": role_name,
            "assume_role_policy": _assume(service),
            "permissions_boundary": literal(boundary),
        },
    )
    ready = [role]
    for policy in policies:
        ready.append(
            m.resource(
                "aws_iam_role_policy_attachment",
                f"{name}_{policy.rsplit('/', 1)[-1]}",
                {"role": role.attr("name"), "policy_arn": _policy_arn(m, policy)},
            )
        )
    return role, depends(*ready)


def _network(ctx: RenderContext, m: TerraformModule, name: str) -> tuple[Any, Any]:
    """Subnet ids and security group id: the user's, or a new VPC's."""
    aws = names.aws_section(ctx.config)
    if aws.existing_subnet_ids:
        return literal(list(aws.existing_subnet_ids)), literal(aws.existing_security_group_id)
    if aws.availability_zones:
        zones: Any = literal(list(aws.availability_zones))
        count = len(aws.availability_zones)
    else:
        m.data(
            "aws_availability_zones",
            "zones",
            {"filter": [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]},
        )
        zones = (
            [f"{aws.region}a", f"{aws.region}b"]
            if m.sandbox
            # Nebari's choice: the first two zones by name (min() only guards a region with one).
            else "${slice(sort(data.aws_availability_zones.zones.names), 0, "
            "min(2, length(data.aws_availability_zones.zones.names)))}"
        )
        count = 2
    # One subnet per zone; counted from the zones so the plan follows what AWS answers.
    subnet_count: Any = count if m.sandbox else "${length(local.zones)}"
    shared = {f"kubernetes.io/cluster/{name}": "shared"}
    vpc = m.resource(
        "aws_vpc",
        "main",
        {
            "cidr_block": literal(aws.vpc_cidr_block),
            "enable_dns_support": True,
            "enable_dns_hostnames": True,
            "tags": {"Name": name, **shared},
        },
    )
    vpc_id = vpc.attr("id", sandbox="vpc-rehearsal")
    m.local("zones", zones)
    subnet = m.resource(
        "aws_subnet",
        "main",
        {
            "count": subnet_count,
            "vpc_id": vpc_id,
            "availability_zone": "${local.zones[count.index]}",
            # A /20 per zone out of the default /16, as Nebari's network module does.
            "cidr_block": f"${{cidrsubnet({_hcl(literal(aws.vpc_cidr_block))}, 4, count.index)}}",
            "map_public_ip_on_launch": True,
            "tags": {"Name": f"{name}-subnet-${{count.index}}", **shared},
            # A zone renamed by AWS must not replace the subnet under a running cluster.
            "lifecycle": [{"ignore_changes": ["availability_zone"]}],
        },
    )
    gateway = m.resource("aws_internet_gateway", "main", {"vpc_id": vpc_id, "tags": {"Name": name}})
    table = m.resource("aws_route_table", "main", {"vpc_id": vpc_id, "tags": {"Name": name}})
    m.resource(
        "aws_route",
        "internet",
        {
            "route_table_id": table.attr("id", sandbox="rtb-rehearsal"),
            "destination_cidr_block": "0.0.0.0/0",
            "gateway_id": gateway.attr("id", sandbox="igw-rehearsal"),
        },
    )
    subnet_ids = [f"subnet-rehearsal-{i}" for i in range(count)] if m.sandbox else "${aws_subnet.main[*].id}"
    m.resource(
        "aws_route_table_association",
        "main",
        {
            "count": subnet_count,
            "subnet_id": "subnet-rehearsal-${count.index}"
            if m.sandbox
            else "${aws_subnet.main[count.index].id}",
            "route_table_id": table.attr("id", sandbox="rtb-rehearsal"),
            "depends_on": depends(subnet),
        },
    )
    group = m.resource(
        "aws_security_group",
        "main",
        {
            "name": name,
            "description": "Main security group for infrastructure deployment",
            "vpc_id": vpc_id,
            "tags": {"Name": name, f"kubernetes.io/cluster/{name}": "owned"},
        },
    )
    group_id = group.attr("id", sandbox="sg-rehearsal")
    m.resource(
        "aws_vpc_security_group_ingress_rule",
        "vpc",
        {"security_group_id": group_id, "ip_protocol": "-1", "cidr_ipv4": literal(aws.vpc_cidr_block)},
    )
    m.resource(
        "aws_vpc_security_group_egress_rule",
        "all",
        {"security_group_id": group_id, "ip_protocol": "-1", "cidr_ipv4": "0.0.0.0/0"},
    )
    return subnet_ids, group_id


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
    subnets, security_group = _network(ctx, m, name)
    cluster_role, cluster_ready = _role(
        m,
        "cluster",
        f"{name}-eks-cluster-role",
        "eks.amazonaws.com",
        aws.permissions_boundary,
        _CLUSTER_POLICIES,
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
    node_role, node_ready = _role(
        m,
        "node",
        f"{name}-eks-node-group-role",
        "ec2.amazonaws.com",
        aws.permissions_boundary,
        _NODE_POLICIES,
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
                "configuration_values": f"${{jsonencode({_hcl(values)})}}",
                "depends_on": depends(*groups),
            },
        )
    autoscaler_role = _irsa(ctx, m, eks, name)
    nfs = _efs(ctx, m, name, subnets, security_group) if cfg.storage.type == "efs" else None
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
        },
    )
    return m.document()


def _hcl(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


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
            role, ready = _role(
                m,
                f"node_{literal(group_name).replace('-', '_')}",
                f"{name}-{group_name}-node-role",
                "ec2.amazonaws.com",
                group.permissions_boundary,
                _NODE_POLICIES,
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


def _irsa(ctx: RenderContext, m: TerraformModule, eks: Ref, name: str) -> Any:
    """OIDC provider and the cluster autoscaler's role, trusted for its service account only."""
    aws = names.aws_section(ctx.config)
    issuer = eks.attr("identity[0].oidc[0].issuer", sandbox="https://oidc.rehearsal.invalid/id/rehearsal")
    oidc = m.resource(
        "aws_iam_openid_connect_provider",
        "main",
        {"url": issuer, "client_id_list": ["sts.amazonaws.com"], "tags": {"Name": f"{name}-eks-irsa"}},
    )
    host = (
        "oidc.rehearsal.invalid/id/rehearsal"
        if m.sandbox
        else '${replace(aws_iam_openid_connect_provider.main.url, "https://", "")}'
    )
    trust = m.data(
        "aws_iam_policy_document",
        "autoscaler_trust",
        {
            "statement": [
                {
                    "actions": ["sts:AssumeRoleWithWebIdentity"],
                    "principals": [
                        {"type": "Federated", "identifiers": [oidc.attr("arn", sandbox="rehearsal")]}
                    ],
                    "condition": [
                        {
                            "test": "StringEquals",
                            "variable": f"{host}:sub",
                            "values": [
                                f"system:serviceaccount:{literal(ctx.config.namespace)}:{AUTOSCALER_SA}"
                            ],
                        },
                        {"test": "StringEquals", "variable": f"{host}:aud", "values": ["sts.amazonaws.com"]},
                    ],
                }
            ]
        },
    )
    rights = m.data(
        "aws_iam_policy_document",
        "autoscaler",
        {
            "statement": [
                {
                    "actions": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                        "eks:DescribeNodegroup",
                    ],
                    "resources": ["*"],
                },
                {
                    "actions": [
                        "autoscaling:SetDesiredCapacity",
                        "autoscaling:TerminateInstanceInAutoScalingGroup",
                    ],
                    "resources": ["*"],
                    "condition": [
                        {
                            "test": "StringEquals",
                            "variable": f"autoscaling:ResourceTag/k8s.io/cluster-autoscaler/{name}",
                            "values": ["owned"],
                        }
                    ],
                },
            ]
        },
    )
    role = m.resource(
        "aws_iam_role",
        "autoscaler",
        {
            "name": f"{name}-cluster-autoscaler",
            "assume_role_policy": trust.attr("json", sandbox="rehearsal"),
            "permissions_boundary": literal(aws.permissions_boundary),
        },
    )
    m.resource(
        "aws_iam_role_policy",
        "autoscaler",
        {
            "name": "cluster-autoscaler",
            "role": role.attr("id", sandbox="rehearsal"),
            "policy": rights.attr("json", sandbox="rehearsal"),
        },
    )
    return role.attr("arn", sandbox=f"arn:aws:iam::000000000000:role/{name}-cluster-autoscaler")


def _efs(ctx: RenderContext, m: TerraformModule, name: str, subnets: Any, security_group: Any) -> Any:
    efs = m.resource(
        "aws_efs_file_system",
        "main",
        {
            "creation_token": f"{name}-jupyterhub-shared",
            "encrypted": True,
            "tags": {"Name": f"{name}-jupyterhub-shared"},
        },
    )
    count = len(subnets) if isinstance(subnets, list) else f"${{length({subnets[2:-1]})}}"
    m.resource(
        "aws_efs_mount_target",
        "main",
        {
            "count": count,
            "file_system_id": efs.attr("id", sandbox="fs-rehearsal"),
            "subnet_id": f"${{element({subnets[2:-1] if isinstance(subnets, str) else _hcl(subnets)}, count.index)}}",
            "security_groups": [security_group],
        },
    )
    return efs.attr(
        "dns_name", sandbox=f"fs-rehearsal.efs.{literal(names.aws_section(ctx.config).region)}.amazonaws.com"
    )
