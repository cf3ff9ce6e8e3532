"""AWS identities of 02-infrastructure: the cluster and node roles, and IRSA.

The cluster autoscaler gets a role of its own through IRSA (an OIDC provider for the
cluster, and a role only its service account may assume), where Nebari gave the rights to
every node's role.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.cloud import names
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

#: Service account the cluster autoscaler runs as (stage 03), trusted by its IRSA role.
AUTOSCALER_SA = "cluster-autoscaler"

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy", "AmazonEKSServicePolicy")
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "service-role/AmazonEBSCSIDriverPolicy",
)


def policy_arn(m: TerraformModule, policy: str) -> str:
    partition = "aws" if m.sandbox else "${data.aws_partition.current.partition}"
    return f"arn:{partition}:iam::aws:policy/{policy}"


def assume(service: str) -> str:
    return (
        '${jsonencode({Version = "2012-10-17", Statement = [{Action = "sts:AssumeRole", '
        f'Effect = "Allow", Principal = {{Service = "{service}"}}}}]}})}}'
    )


def role(
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
            "assume_role_policy": assume(service),
            "permissions_boundary": literal(boundary),
        },
    )
    ready = [role]
    for policy in policies:
        ready.append(
            m.resource(
                "aws_iam_role_policy_attachment",
                f"{name}_{policy.rsplit('/', 1)[-1]}",
                {"role": role.attr("name"), "policy_arn": policy_arn(m, policy)},
            )
        )
    return role, depends(*ready)


def irsa(ctx: RenderContext, m: TerraformModule, eks: Ref, name: str) -> Any:
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
