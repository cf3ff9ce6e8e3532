"""Cloud parts of stage 03: the AWS cluster autoscaler and the NVIDIA device plugin.

GKE and AKS scale their node pools themselves (autoscaling is set on each pool in stage
02), and GKE installs GPU drivers itself; on EKS both are workloads of the cluster. The
autoscaler runs as the service account its IRSA role from stage 02 trusts.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.cloud import names
from stagegraph.stages.cloud.aws import NODEGROUP_LABEL
from stagegraph.stages.cloud.aws_iam import AUTOSCALER_SA
from stagegraph.stages.common import helm_release
from stagegraph.tfjson import TerraformModule, literal

SECTIONS = ("project_name", "amazon_web_services.region", "amazon_web_services.node_groups")
PINS = ("helm_charts.cluster_autoscaler", "images.cluster_autoscaler", "images.nvidia_device_plugin")


def render_addons(ctx: RenderContext, m: TerraformModule, namespace: str, after: list[str]) -> None:
    if ctx.provider != "aws":
        return
    aws = names.aws_section(ctx.config)
    image = ctx.pins.image("cluster_autoscaler")
    general = {NODEGROUP_LABEL: "general"}
    values: dict[str, Any] = {
        "cloudProvider": "aws",
        "awsRegion": literal(aws.region),
        "autoDiscovery": {"clusterName": names.cluster_name(ctx.config)},
        "image": {"repository": image.image, "tag": image.tag},
        "rbac": {
            "create": True,
            "serviceAccount": {
                "create": True,
                "name": AUTOSCALER_SA,
                "annotations": {"eks.amazonaws.com/role-arn": "${var.autoscaler_role_arn}"},
            },
        },
        "nodeSelector": general,
    }
    helm_release(m, ctx, "cluster-autoscaler", "cluster_autoscaler", namespace, values, depends_on=after)
    gpu_groups = sorted(name for name, group in aws.node_groups.items() if group.gpu)
    if gpu_groups:
        _device_plugin(ctx, m, [literal(g) for g in gpu_groups])


def _device_plugin(ctx: RenderContext, m: TerraformModule, groups: list[str]) -> None:
    """The NVIDIA device plugin on the GPU node groups only (it advertises nvidia.com/gpu)."""
    labels = {"name": "nvidia-device-plugin-ds"}
    m.resource(
        "kubernetes_daemon_set_v1",
        "nvidia_device_plugin",
        {
            "metadata": [{"name": "nvidia-device-plugin-daemonset", "namespace": "kube-system"}],
            "spec": [
                {
                    "selector": [{"match_labels": labels}],
                    "strategy": [{"type": "RollingUpdate"}],
                    "template": [
                        {
                            "metadata": [{"labels": labels}],
                            "spec": [
                                {
                                    "priority_class_name": "system-node-critical",
                                    "affinity": [
                                        {
                                            "node_affinity": [
                                                {
                                                    "required_during_scheduling_ignored_during_execution": [
                                                        {
                                                            "node_selector_term": [
                                                                {
                                                                    "match_expressions": [
                                                                        {
                                                                            "key": NODEGROUP_LABEL,
                                                                            "operator": "In",
                                                                            "values": groups,
                                                                        }
                                                                    ]
                                                                }
                                                            ]
                                                        }
                                                    ]
                                                }
                                            ]
                                        }
                                    ],
                                    "toleration": [
                                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                                        {
                                            "key": "nvidia.com/gpu",
                                            "operator": "Exists",
                                            "effect": "NoSchedule",
                                        },
                                        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
                                    ],
                                    "container": [
                                        {
                                            "name": "nvidia-device-plugin-ctr",
                                            "image": ctx.pins.image("nvidia_device_plugin").ref,
                                            "security_context": [
                                                {
                                                    "allow_privilege_escalation": False,
                                                    "capabilities": [{"drop": ["ALL"]}],
                                                }
                                            ],
                                            "volume_mount": [
                                                {
                                                    "name": "device-plugin",
                                                    "mount_path": "/var/lib/kubelet/device-plugins",
                                                }
                                            ],
                                        }
                                    ],
                                    "volume": [
                                        {
                                            "name": "device-plugin",
                                            "host_path": [{"path": "/var/lib/kubelet/device-plugins"}],
                                        }
                                    ],
                                }
                            ],
                        }
                    ],
                }
            ],
        },
    )
