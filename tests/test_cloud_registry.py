"""The container registry each cloud's stage 02 creates, who may pull from it, and its address.

Pure renders of the cloud fixtures (Terraform plans them against the providers' real schemas
in test_provider_check; the rehearsal applies their twins in test_cloud_rehearsal).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stagegraph.configfile import parse_config
from stagegraph.graph import build_graph
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.cloud_names import ACR, acr_name, nebari_escape
from stagegraph.schema.config import NebariConfig
from stagegraph.stages.builtin import BUILTIN_STAGES
from stagegraph.stages.infrastructure import InfrastructureOutputs

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "configs"
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
GRAPH = build_graph(BUILTIN_STAGES)


def _config(name: str, **changes: Any) -> NebariConfig:
    data = yaml.safe_load((FIXTURES / name).read_text())
    data.update(changes)
    return parse_config(yaml.safe_dump(data), "nebari-config.yaml")


def _infra(config: NebariConfig) -> dict[str, Any]:
    rendered = render_stage(GRAPH["02-infrastructure"], config, LOCK, "lockfiles/versions.yaml")
    (doc,) = [json.loads(data) for name, data in rendered.files.items() if name.endswith("main.tf.json")]
    assert isinstance(doc, dict)
    return doc


def test_aws_ecr_repository_is_nebaris_and_every_node_role_may_pull() -> None:
    doc = _infra(_config("aws-typical.happy.yaml"))
    repo = doc["resource"]["aws_ecr_repository"]["jupyterlab"]
    assert repo["name"] == "awsdemo-dev-jupyterlab"
    assert repo["image_scanning_configuration"] == [{"scan_on_push": True}]
    assert repo["tags"]["Name"] == "awsdemo-dev-jupyterlab"
    assert "force_delete" not in repo  # a destroy never deletes users' images
    attachments = doc["resource"]["aws_iam_role_policy_attachment"]
    pulls = [
        a for a in attachments.values() if a["policy_arn"].endswith("AmazonEC2ContainerRegistryReadOnly")
    ]
    assert [a["role"] for a in pulls] == ["${aws_iam_role.node.name}"]
    assert {g["node_role_arn"] for g in doc["resource"]["aws_eks_node_group"].values()} == {
        "${aws_iam_role.node.arn}"
    }
    assert doc["output"]["container_registry"]["value"] == "${aws_ecr_repository.jupyterlab.repository_url}"


def test_gcp_artifact_registry_is_a_docker_repository_the_node_pools_read() -> None:
    doc = _infra(_config("gcp.happy.yaml"))
    repo = doc["resource"]["google_artifact_registry_repository"]["jupyterhub"]
    assert repo == {
        "repository_id": "gcpdemo-dev",
        "location": "us-central1",
        "project": "example-project-123",
        "format": "DOCKER",
    }
    reader = doc["resource"]["google_project_iam_member"]["nodes_artifactregistry_reader"]
    assert reader["role"] == "roles/artifactregistry.reader"
    assert reader["member"] == "${google_service_account.nodes.member}"
    for pool in doc["resource"]["google_container_node_pool"].values():
        node = pool["node_config"][0]
        assert node["service_account"] == "${google_service_account.nodes.email}"
        assert "https://www.googleapis.com/auth/cloud-platform" in node["oauth_scopes"]
    address = doc["output"]["container_registry"]["value"]
    assert address.startswith("${google_artifact_registry_repository.jupyterhub.location}-docker.pkg.dev/")


def test_azure_registry_is_pulled_by_the_kubelet_identity() -> None:
    doc = _infra(_config("azure.happy.yaml"))
    registry = doc["resource"]["azurerm_container_registry"]["main"]
    assert registry["name"] == "azdemodev"
    assert registry["sku"] == "Standard"
    assert registry["resource_group_name"] == "${azurerm_resource_group.main.name}"
    assert registry["tags"] == {"cost-center": "42"}
    pull = doc["resource"]["azurerm_role_assignment"]["kubelet_acr_pull"]
    assert pull["role_definition_name"] == "AcrPull"
    assert pull["scope"] == "${azurerm_container_registry.main.id}"
    assert pull["principal_id"] == "${azurerm_kubernetes_cluster.main.kubelet_identity[0].object_id}"
    assert doc["output"]["container_registry"]["value"] == "${azurerm_container_registry.main.login_server}"


@pytest.mark.parametrize(
    ("project", "namespace", "expected"),
    [
        ("azdemo", "dev", "azdemodev"),  # Nebari's name, unchanged
        ("data-lab", "dev", "da61ta61a2Dla61bdev"),  # Nebari's escape: '-' -> a2D, 'a' -> a61
        ("my_proj", "dev", "mya5Fprojdev"),  # Nebari left '_' in (Azure refused it)
        ("demo", "team-a", "demotea61ma2Da61"),  # so did a hyphen in the namespace
    ],
)
def test_acr_name_follows_nebari_and_is_always_valid(project: str, namespace: str, expected: str) -> None:
    assert acr_name(project, namespace) == expected
    assert ACR.problem(expected) is None


def test_escape_keeps_alphanumeric_names_and_is_unambiguous() -> None:
    assert nebari_escape("abc123") == "abc123"
    assert nebari_escape("a-b") != nebari_escape("a2Db")  # 'a' itself is escaped once escaping starts
    assert nebari_escape("a-b") == "a61a2Db"


@pytest.mark.parametrize(
    ("fixture", "twin", "address"),
    [
        (
            "aws-typical.happy.yaml",
            "aws_ecr_repository__jupyterlab",
            "000000000000.dkr.ecr.us-east-1.amazonaws.com/awsdemo-dev-jupyterlab",
        ),
        ("gcp.happy.yaml", "google_artifact_registry_repository__jupyterhub", None),
        ("azure.happy.yaml", "azurerm_container_registry__main", "azdemodev.azurecr.io"),
    ],
)
def test_rehearsal_renders_the_registry_as_a_twin_with_an_address(
    fixture: str, twin: str, address: str | None
) -> None:
    config = _config(fixture, stagegraph={"rehearse": True})
    doc = _infra(config)
    assert set(doc["resource"]) == {"terraform_data"}
    assert twin in doc["resource"]["terraform_data"]
    value = doc["output"]["container_registry"]["value"]
    if address is None:  # GCP's address is built from the twin's own inputs by Terraform
        assert value == (
            f"${{terraform_data.{twin}.output.location}}-docker.pkg.dev/"
            f"${{terraform_data.{twin}.output.project}}/${{terraform_data.{twin}.output.repository_id}}"
        )
    else:
        assert value == address
    assert "container_registry" in InfrastructureOutputs.model_fields


def test_the_schema_check_plans_an_unset_computed_block_unknown_as_sdkv2_does() -> None:
    """Why `kubelet_identity[0]` plans: a real azurerm plan shows the block "known after apply"."""
    from tf.types import Unknown

    from stagegraph.tfschema.echo import mark_computed

    computed = {
        "nesting_mode": "list",
        "block": {"attributes": {"object_id": {"type": "string", "optional": True, "computed": True}}},
    }
    optional = {
        "nesting_mode": "single",
        "block": {"attributes": {"create": {"type": "string", "optional": True}}},
    }
    block = {
        "attributes": {"name": {"type": "string", "required": True}},
        "block_types": {"kubelet_identity": computed, "timeouts": optional},
    }
    planned = mark_computed({"name": "x", "kubelet_identity": [], "timeouts": None}, block)
    assert planned["kubelet_identity"] is Unknown
    assert planned["timeouts"] is None  # a block the user fills in stays as configured
    configured = mark_computed({"name": "x", "kubelet_identity": [{"object_id": "abc"}]}, block)
    assert configured["kubelet_identity"] == [{"object_id": "abc"}]
    # A data source's read is filled in, never unknown.
    assert mark_computed({"name": "x", "kubelet_identity": []}, block, fill=True)["kubelet_identity"] == []
