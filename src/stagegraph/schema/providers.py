"""Provider sections of the infrastructure stage: where the Kubernetes cluster comes from.

Exactly one of them is used: the one named by the top-level `provider` key. Nothing here
asks a cloud API anything (regions, versions and instance types are checked by the cloud
when the stage applies), so validation works offline and in milliseconds.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints, field_validator, model_validator

from stagegraph.schema.base import Section, field_problem
from stagegraph.schema.cloud_catalog import known_region, region_hint
from stagegraph.schema.cloud_instances import instance_problem
from stagegraph.schema.cloud_names import (
    AKS_POOL,
    AZURE_NODE_GROUP_SUFFIX,
    EKS_GROUP,
    GKE_POOL,
    RESOURCE_GROUP,
    NameRule,
)

_TAINT_KEY = r"[a-zA-Z0-9][-a-zA-Z0-9_.]{0,251}[a-zA-Z0-9]?(?:/[a-zA-Z0-9][-a-zA-Z0-9_.]{0,251}[a-zA-Z0-9]?)?"
_TAINT_VALUE = r"(?:[a-zA-Z0-9][-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9]?)?"
_TAINT_STRING = rf"^({_TAINT_KEY})(?:=({_TAINT_VALUE}))?:(NoSchedule|PreferNoSchedule|NoExecute)$"


@functools.cache
def _taint_string() -> re.Pattern[str]:
    # Compiled on first use: this regex alone costs milliseconds, and most configs have no taints.
    return re.compile(_TAINT_STRING)


def _taint_from_string(value: Any) -> Any:
    """Accept kubectl's `key=value:Effect` form as well as a mapping."""
    if not isinstance(value, str):
        return value
    match = _taint_string().match(value)
    if match is None:
        raise ValueError(
            "a taint string should read key=value:Effect, Effect one of NoSchedule, PreferNoSchedule, NoExecute"
        )
    key, taint_value, effect = match.groups()
    return {"key": key, "value": taint_value, "effect": effect}


def _version_string(value: Any) -> Any:
    # YAML reads 1.30 as the float 1.3: refuse rather than deploy the wrong version.
    if isinstance(value, float):
        raise ValueError(
            "write the version in quotes (e.g. '1.31'): YAML reads an unquoted 1.30 as the number 1.3"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: A Kubernetes version such as "1.31" or "1.31.4"; must be quoted in YAML.
KubernetesVersion = Annotated[
    str, BeforeValidator(_version_string), StringConstraints(pattern=r"^\d+\.\d+(\.\d+)?")
]


class NodeSelector(Section):
    """A Kubernetes node label that pins pods to a node group."""

    key: str = Field(min_length=1, description="Label key (e.g. kubernetes.io/os).")
    value: str = Field(description="Label value (e.g. linux).")


# Defaults are plain data validated by the parent model (`validate_default`), so loading a
# config never builds a validator per nested model just to make a default.
def _default_selectors() -> dict[str, dict[str, str]]:
    return {group: {"key": "kubernetes.io/os", "value": "linux"} for group in ("general", "user", "worker")}


class KubeSection(Section):
    """An existing kubeconfig context and the labels of its node groups."""

    kube_context: str | None = Field(
        None, description="Kubeconfig context to deploy into (null: the current one)."
    )
    node_selectors: dict[str, NodeSelector] = Field(
        default_factory=_default_selectors,
        validate_default=True,
        description="Node selector of each node group; general, user and worker are required.",
    )

    @field_validator("node_selectors")
    @classmethod
    def _all_groups(cls, value: dict[str, NodeSelector]) -> dict[str, NodeSelector]:
        missing = [group for group in ("general", "user", "worker") if group not in value]
        if missing:
            raise ValueError(
                f"missing node group(s): {', '.join(missing)}; each of general, user, worker needs a selector"
            )
        return value


class SandboxProvider(KubeSection):
    """stagegraph's sandbox: offline stand-ins shaped like the local provider."""


class LocalProvider(KubeSection):
    """A local kind cluster created by the infrastructure stage."""


class ExistingProvider(KubeSection):
    """A Kubernetes cluster you already run, reached through your kubeconfig."""

    kubeconfig: str | None = Field(
        None,
        min_length=1,
        description="Kubeconfig file of the cluster (relative to the config file's folder). "
        "null: as kubectl, the KUBECONFIG environment variable (a list of files, merged), "
        "else ~/.kube/config.",
    )


class Taint(Section):
    """A Kubernetes node taint; also accepted as a string `key=value:Effect`."""

    key: str = Field(pattern=rf"^{_TAINT_KEY}$", description="Taint key.")
    value: str | None = Field(None, pattern=rf"^{_TAINT_VALUE}$", description="Taint value (may be null).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        description="What the taint does to pods."
    )


TaintEntry = Annotated[Taint, BeforeValidator(_taint_from_string)]


class NodeGroup(Section):
    """An autoscaling group of cloud machines."""

    instance: str = Field(min_length=1, description="Machine type of the group's nodes.")
    min_nodes: int = Field(0, ge=0, description="Fewest nodes the group scales down to.")
    max_nodes: int = Field(1, ge=1, description="Most nodes the group scales up to.")
    taints: list[TaintEntry] | None = Field(
        None,
        description="Taints of the group's nodes; null: none for general, dedicated=nebari:NoSchedule for the others.",
    )

    @model_validator(mode="after")
    def _range(self) -> NodeGroup:
        if self.min_nodes > self.max_nodes:
            raise field_problem(
                "min_nodes", f"should not exceed max_nodes ({self.max_nodes})", self.min_nodes
            )
        return self


def _group_names(rule: NameRule, groups: dict[str, Any]) -> None:
    """Refuse the first node group whose name the cloud would refuse, at its own key."""
    for name in groups:
        problem = rule.problem(name)
        if problem:
            raise field_problem(f"node_groups.{name}", problem, name)


def _region(provider: str, value: str) -> str:
    if not known_region(provider, value):
        label = {"aws": "an AWS", "gcp": "a GCP", "azure": "an Azure"}[provider]
        raise ValueError(f"not {label} region this release knows; {region_hint(provider, value)}")
    return value


class AWSNodeGroup(NodeGroup):
    """An EKS managed node group."""

    @model_validator(mode="after")
    def _instance_type(self) -> AWSNodeGroup:
        problem = instance_problem("aws", self.instance, gpu=self.gpu)
        if problem:
            raise field_problem("instance", problem, self.instance)
        return self

    gpu: bool = Field(False, description="Whether the nodes have GPUs (uses the GPU AMI).")
    single_subnet: bool = Field(False, description="Whether to place all nodes in the first subnet.")
    permissions_boundary: str | None = Field(
        None, description="IAM permissions boundary ARN for the node role."
    )
    spot: bool = Field(False, description="Whether to use spot instances.")


class GCPGuestAccelerator(Section):
    """GPUs attached to each node of a GKE node pool."""

    name: str = Field(min_length=1, description="Accelerator type (e.g. nvidia-tesla-t4).")
    count: int = Field(1, ge=1, description="Accelerators per node.")


class GCPNodeGroup(NodeGroup):
    """A GKE node pool."""

    preemptible: bool = Field(False, description="Whether to use preemptible VMs.")
    labels: dict[str, str] = Field(default_factory=dict, description="Kubernetes labels of the nodes.")
    guest_accelerators: list[GCPGuestAccelerator] = Field(default_factory=list, description="GPUs per node.")

    @model_validator(mode="after")
    def _instance_type(self) -> GCPNodeGroup:
        problem = instance_problem("gcp", self.instance, gpu=bool(self.guest_accelerators))
        if problem:
            raise field_problem("instance", problem, self.instance)
        return self


class AzureNodeGroup(NodeGroup):
    """An AKS node pool."""

    @model_validator(mode="after")
    def _instance_type(self) -> AzureNodeGroup:
        problem = instance_problem("azure", self.instance, gpu=False)
        if problem:
            raise field_problem("instance", problem, self.instance)
        return self


def _groups(general: str, other: str) -> dict[str, dict[str, Any]]:
    return {
        "general": {"instance": general, "min_nodes": 1, "max_nodes": 1},
        "user": {"instance": other, "min_nodes": 0, "max_nodes": 5},
        "worker": {"instance": other, "min_nodes": 0, "max_nodes": 5},
    }


class AmazonWebServicesProvider(Section):
    """An EKS cluster on Amazon Web Services."""

    region: str = Field(min_length=1, description="AWS region (e.g. us-east-1).")

    kubernetes_version: KubernetesVersion | None = Field(
        None,
        description="EKS Kubernetes version, quoted (e.g. '1.31'); null: the lockfile's kubernetes.max_version. "
        "Checked against that maximum at validate.",
    )
    availability_zones: list[str] | None = Field(
        None,
        description="Zones for the subnets; null: the first two zones of the region, chosen at deploy time.",
    )
    node_groups: dict[str, AWSNodeGroup] = Field(
        validate_default=True,
        default_factory=lambda: _groups("m5.2xlarge", "m5.xlarge"),
        description="Node groups by name; general, user and worker are expected.",
    )
    eks_endpoint_access: Literal["private", "public", "public_and_private"] | None = Field(
        "public", description="Who can reach the EKS API endpoint."
    )
    eks_public_access_cidrs: list[str] | None = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="CIDR blocks allowed to reach the public EKS endpoint.",
    )
    eks_kms_arn: str | None = Field(
        None, description="ARN of a customer-managed symmetric KMS key for secrets encryption."
    )
    existing_subnet_ids: list[str] | None = Field(
        None, description="Deploy into these subnets instead of creating a VPC."
    )
    existing_security_group_id: str | None = Field(
        None, description="Security group to use with existing subnets."
    )
    vpc_cidr_block: str = Field("10.10.0.0/16", description="CIDR block of the VPC to create.")
    permissions_boundary: str | None = Field(
        None, description="IAM permissions boundary ARN for every role created."
    )
    tags: dict[str, str] | None = Field(default_factory=dict, description="Tags added to every AWS resource.")

    @model_validator(mode="after")
    def _existing_network(self) -> AmazonWebServicesProvider:
        # Nebari quietly creates a new VPC when only one of the two is set; refuse instead.
        if bool(self.existing_subnet_ids) != bool(self.existing_security_group_id):
            missing = "existing_security_group_id" if self.existing_subnet_ids else "existing_subnet_ids"
            raise field_problem(missing, "set existing_subnet_ids and existing_security_group_id together")
        return self

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return _region("aws", value)

    @model_validator(mode="after")
    def _node_group_names(self) -> AmazonWebServicesProvider:
        _group_names(EKS_GROUP, self.node_groups)
        return self


class GCPIPAllocationPolicy(Section):
    """Secondary IP ranges of a VPC-native GKE cluster."""

    cluster_secondary_range_name: str = Field(description="Secondary range for pods.")
    services_secondary_range_name: str = Field(description="Secondary range for services.")
    cluster_ipv4_cidr_block: str = Field(description="CIDR block for pods.")
    services_ipv4_cidr_block: str = Field(description="CIDR block for services.")


class GCPCIDRBlock(Section):
    """A CIDR block allowed to reach the GKE control plane."""

    cidr_block: str = Field(description="CIDR block.")
    display_name: str = Field(description="Label of the block.")


class GCPPrivateClusterConfig(Section):
    """Private GKE cluster settings."""

    enable_private_nodes: bool = Field(description="Whether nodes have internal IPs only.")
    enable_private_endpoint: bool = Field(description="Whether the control plane has an internal IP only.")
    master_ipv4_cidr_block: str = Field(description="CIDR block of the control plane network.")


class GoogleCloudPlatformProvider(Section):
    """A GKE cluster on Google Cloud Platform."""

    region: str = Field(min_length=1, description="GCP region (e.g. us-central1).")

    project: str = Field(
        pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
        description="GCP project id: 6-30 lowercase letters, digits or hyphens (e.g. my-project-123).",
    )
    kubernetes_version: KubernetesVersion | None = Field(
        None,
        description="GKE Kubernetes version, quoted (e.g. '1.31'); null: the lockfile's kubernetes.max_version. "
        "Checked against that maximum at validate.",
    )
    availability_zones: list[str] | None = Field(
        default_factory=list, description="Zones of the node pools (empty: GKE's choice)."
    )
    release_channel: str = Field(
        "UNSPECIFIED", description="GKE release channel (UNSPECIFIED, RAPID, REGULAR, STABLE)."
    )
    node_groups: dict[str, GCPNodeGroup] = Field(
        validate_default=True,
        default_factory=lambda: _groups("e2-standard-8", "e2-standard-4"),
        description="Node pools by name; general, user and worker are expected.",
    )
    tags: list[str] | None = Field(default_factory=list, description="Network tags of the nodes.")
    networking_mode: str = Field("ROUTE", description="ROUTE or VPC_NATIVE.")
    network: str = Field("default", description="VPC network of the cluster.")
    subnetwork: str | None = Field(None, description="Subnetwork of the cluster.")
    ip_allocation_policy: GCPIPAllocationPolicy | None = Field(
        None, description="Secondary ranges for VPC_NATIVE mode."
    )
    master_authorized_networks_config: GCPCIDRBlock | None = Field(
        None, description="CIDR block allowed to reach the control plane."
    )
    private_cluster_config: GCPPrivateClusterConfig | None = Field(
        None, description="Private cluster settings."
    )

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return _region("gcp", value)

    @model_validator(mode="after")
    def _node_group_names(self) -> GoogleCloudPlatformProvider:
        _group_names(GKE_POOL, self.node_groups)
        return self


AzureTagKey = Annotated[str, StringConstraints(max_length=512, pattern=r"^[^<>%&\\?/]*$")]
AzureTagValue = Annotated[str, StringConstraints(max_length=256)]


class AzureProvider(Section):
    """An AKS cluster on Microsoft Azure."""

    region: str = Field(min_length=1, description="Azure region (e.g. Central US).")

    kubernetes_version: KubernetesVersion | None = Field(
        None,
        description="AKS Kubernetes version, quoted; null: the lockfile's kubernetes.max_version. Checked "
        "against that maximum at validate.",
    )
    storage_account_postfix: str = Field(
        pattern=r"^[a-z0-9]{1,10}$", description="Random suffix making the state storage account name unique."
    )
    authorized_ip_ranges: list[str] | None = Field(
        default_factory=lambda: ["0.0.0.0/0"], description="CIDR blocks allowed to reach the AKS API."
    )
    resource_group_name: str | None = Field(
        None,
        # For editors; checked by `_resource_group` with the cloud's rule (one message).
        json_schema_extra={
            "maxLength": RESOURCE_GROUP.max_len - len(AZURE_NODE_GROUP_SUFFIX),
            "pattern": RESOURCE_GROUP.pattern,
        },
        description="Resource group to create (default: <project>-<namespace>).",
    )
    node_groups: dict[str, AzureNodeGroup] = Field(
        validate_default=True,
        default_factory=lambda: _groups("Standard_D8_v3", "Standard_D4_v3"),
        description="Node pools by name; general, user and worker are expected.",
    )
    vnet_subnet_id: str | None = Field(None, description="Existing subnet to place the nodes in.")
    private_cluster_enabled: bool = Field(False, description="Whether the AKS API has a private IP only.")
    tags: dict[AzureTagKey, AzureTagValue] | None = Field(
        default_factory=dict, description="Tags added to every Azure resource."
    )
    network_profile: dict[str, str] | None = Field(
        None, description="AKS network profile settings (network_plugin, ...)."
    )
    max_pods: int | None = Field(None, ge=1, description="Most pods per node.")
    workload_identity_enabled: bool = Field(False, description="Whether to enable AKS workload identity.")
    azure_policy_enabled: bool | None = Field(None, description="Whether to enable the Azure Policy add-on.")

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return _region("azure", value)

    @field_validator("resource_group_name")
    @classmethod
    def _resource_group(cls, value: str | None) -> str | None:
        # Azure names the node resource group after it, with a suffix: that name must fit too.
        if value is None:
            return value
        problem = RESOURCE_GROUP.problem(value)
        if problem:
            raise ValueError(problem)
        problem = RESOURCE_GROUP.problem(value + AZURE_NODE_GROUP_SUFFIX)
        if problem:
            raise ValueError(f"{problem} (Azure adds {AZURE_NODE_GROUP_SUFFIX!r} for the nodes)")
        return value

    @model_validator(mode="after")
    def _node_group_names(self) -> AzureProvider:
        _group_names(AKS_POOL, self.node_groups)
        return self
