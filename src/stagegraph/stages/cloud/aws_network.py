"""AWS network of 02-infrastructure: a VPC with a public subnet per zone, or yours; EFS.

As Nebari's network module: one /20 per zone out of the VPC block, an internet gateway and
one route table, a security group open inside the VPC. With `existing_subnet_ids` and
`existing_security_group_id` nothing is created and those are used as they are.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.cloud import names
from stagegraph.stages.cloud.cluster import hcl
from stagegraph.tfjson import TerraformModule, depends, literal


def network(ctx: RenderContext, m: TerraformModule, name: str) -> tuple[Any, Any]:
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
            "cidr_block": f"${{cidrsubnet({hcl(literal(aws.vpc_cidr_block))}, 4, count.index)}}",
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


def efs(ctx: RenderContext, m: TerraformModule, name: str, subnets: Any, security_group: Any) -> Any:
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
            "subnet_id": f"${{element({subnets[2:-1] if isinstance(subnets, str) else hcl(subnets)}, count.index)}}",
            "security_groups": [security_group],
        },
    )
    return efs.attr(
        "dns_name", sandbox=f"fs-rehearsal.efs.{literal(names.aws_section(ctx.config).region)}.amazonaws.com"
    )
