"""Cloud renders as a user reads them: backends, versions, node groups, GPUs, DNS, no keys.

Pure renders of the fixture configs (no Terraform); the rehearsal tests run them through
Terraform and the golden files pin every line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stagegraph.configfile import parse_config
from stagegraph.errors import ConfigError, RenderError
from stagegraph.graph import build_graph
from stagegraph.lockfile import load_lockfile
from stagegraph.render import BACKEND_FILE, render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stages.builtin import BUILTIN_STAGES
from stagegraph.stages.cloud.versions import check_config_version

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "configs"
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
GRAPH = build_graph(BUILTIN_STAGES)
CLOUD_FIXTURES = {"aws": "aws-typical.happy.yaml", "gcp": "gcp.happy.yaml", "azure": "azure.happy.yaml"}
SECTION = {"aws": "amazon_web_services", "gcp": "google_cloud_platform", "azure": "azure"}


def _data(name: str) -> dict[str, Any]:
    data = yaml.safe_load((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


def _config(data: dict[str, Any]) -> NebariConfig:
    return parse_config(yaml.safe_dump(data), "nebari-config.yaml")


def _render(config: NebariConfig, stage: str) -> dict[str, Any]:
    rendered = render_stage(GRAPH[stage], config, LOCK, "lockfiles/versions.yaml")
    return {name: json.loads(data) for name, data in rendered.files.items() if name.endswith(".json")}


def _terraform_stages() -> list[str]:
    return [s.name for s in GRAPH.stages if s.kind == "terraform"]


@pytest.mark.parametrize("cloud", sorted(CLOUD_FIXTURES))
def test_every_later_stage_finds_the_store_01_creates(cloud: str) -> None:
    config = _config(_data(CLOUD_FIXTURES[cloud]))
    state = _render(config, "01-terraform-state")
    assert BACKEND_FILE not in state  # the store's own state stays local, as in Nebari
    outputs = state["main.tf.json"]["output"]
    kind = outputs["state_backend"]["value"]
    assert kind == {"aws": "s3", "gcp": "gcs", "azure": "azurerm"}[cloud]
    resources = state["main.tf.json"]["resource"]
    keys = set()
    for stage in _terraform_stages()[1:]:
        backend = _render(config, stage)[BACKEND_FILE]["terraform"]["backend"]
        assert list(backend) == [kind], stage
        body = backend[kind]
        keys.add(body.get("key") or body.get("prefix"))
        if cloud == "aws":
            assert body["bucket"] == resources["aws_s3_bucket"]["state"]["bucket"]
            assert body["dynamodb_table"] == resources["aws_dynamodb_table"]["lock"]["name"]
            assert body["encrypt"] is True
        elif cloud == "gcp":
            assert body["bucket"] == resources["google_storage_bucket"]["state"]["name"]
        else:
            assert body["storage_account_name"] == resources["azurerm_storage_account"]["state"]["name"]
            assert body["container_name"] == resources["azurerm_storage_container"]["state"]["name"]
            assert body["resource_group_name"] == resources["azurerm_resource_group"]["state"]["name"]
    assert len(keys) == len(_terraform_stages()) - 1  # one state object per stage


def test_aws_state_bucket_is_versioned_encrypted_and_private() -> None:
    resources = _render(_config(_data("aws-typical.happy.yaml")), "01-terraform-state")["main.tf.json"][
        "resource"
    ]
    assert resources["aws_s3_bucket_versioning"]["state"]["versioning_configuration"] == [
        {"status": "Enabled"}
    ]
    rule = resources["aws_s3_bucket_server_side_encryption_configuration"]["state"]["rule"][0]
    assert rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    block = resources["aws_s3_bucket_public_access_block"]["state"]
    assert all(block[k] is True for k in block if k != "bucket")
    assert resources["aws_dynamodb_table"]["lock"]["hash_key"] == "LockID"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"type": "local"}, None),
        ({"type": "existing", "backend": "pg", "config": {"conn_str": "postgres://db/tf"}}, "pg"),
    ],
)
def test_state_type_local_and_existing_on_a_cloud(state: dict[str, Any], expected: str | None) -> None:
    data = _data("gcp.happy.yaml")
    data["terraform_state"] = state
    config = _config(data)
    assert "google_storage_bucket" not in json.dumps(_render(config, "01-terraform-state"))
    files = _render(config, "04-kubernetes-ingress")
    if expected is None:
        assert BACKEND_FILE not in files
    else:
        assert files[BACKEND_FILE]["terraform"]["backend"] == {"pg": {"conn_str": "postgres://db/tf"}}


def test_rehearsal_renders_twins_and_no_backend() -> None:
    data = _data("aws-typical.happy.yaml")
    data["stagegraph"] = {"rehearse": True}
    config = _config(data)
    for stage in _terraform_stages():
        files = _render(config, stage)
        assert BACKEND_FILE not in files
        assert set(files["main.tf.json"].get("resource", {})) <= {"terraform_data"}, stage


@pytest.mark.parametrize("cloud", sorted(CLOUD_FIXTURES))
def test_kubernetes_version_newer_than_the_lockfile_is_refused_offline(cloud: str) -> None:
    data = _data(CLOUD_FIXTURES[cloud])
    data[SECTION[cloud]]["kubernetes_version"] = "1.99"
    config = _config(data)
    with pytest.raises(ConfigError) as caught:
        check_config_version(config, "1.31", "nebari-config.yaml", "lockfiles/versions.yaml")
    assert str(caught.value) == (
        f"nebari-config.yaml: {SECTION[cloud]}.kubernetes_version: newer than lockfiles/versions.yaml "
        "kubernetes.max_version 1.31, the newest this release is tested with; use 1.31 or older (got '1.99')"
    )
    with pytest.raises(RenderError, match="kubernetes_version: newer than"):
        _render(config, "02-infrastructure")


def test_kubernetes_version_left_out_comes_from_the_lockfile() -> None:
    data = _data("aws-typical.happy.yaml")
    del data["amazon_web_services"]["kubernetes_version"]
    main = _render(_config(data), "02-infrastructure")["main.tf.json"]
    assert main["resource"]["aws_eks_cluster"]["main"]["version"] == LOCK.kubernetes.max_version.version


@pytest.mark.parametrize(
    ("cloud", "label"),
    [
        ("aws", "eks.amazonaws.com/nodegroup"),
        ("gcp", "cloud.google.com/gke-nodepool"),
        ("azure", "azure-node-pool"),
    ],
)
def test_node_selector_per_node_group_and_no_key_in_any_file(cloud: str, label: str) -> None:
    data = _data(CLOUD_FIXTURES[cloud])
    config = _config(data)
    main = _render(config, "02-infrastructure")["main.tf.json"]
    selectors = main["output"]["node_selectors"]["value"]
    assert selectors == {g: {"key": label, "value": g} for g in data[SECTION[cloud]]["node_groups"]}
    text = json.dumps(main)
    # The kubeconfig authenticates through the cloud's CLI: no client key, token or password.
    for secret in ("client_key", "kube_admin_config", "aws_eks_cluster_auth", "access_token"):
        assert secret not in text
    assert main["resource"]["local_file"]["kubeconfig"]["file_permission"] == "0600"


def test_aws_gpu_groups_get_the_gpu_ami_and_the_device_plugin_only_there() -> None:
    data = _data("aws-existing-network-gpu.happy.yaml")
    config = _config(data)
    groups = _render(config, "02-infrastructure")["main.tf.json"]["resource"]["aws_eks_node_group"]
    assert groups["gpu_t4"]["ami_type"] == groups["gpu_a10"]["ami_type"] == "AL2023_x86_64_NVIDIA"
    assert groups["general"]["ami_type"] == "AL2023_x86_64_STANDARD"
    assert groups["gpu_t4"]["subnet_ids"] == ["subnet-0aaa1111"]  # single_subnet
    assert groups["worker"]["capacity_type"] == "SPOT"
    init = _render(config, "03-kubernetes-initialize")["main.tf.json"]["resource"]
    plugin = init["kubernetes_daemon_set_v1"]["nvidia_device_plugin"]
    terms = json.dumps(plugin)
    assert '"values": ["gpu-a10", "gpu-t4"]' in terms
    autoscaler = init["helm_release"]["cluster_autoscaler"]
    assert autoscaler["namespace"] == "${kubernetes_namespace.main.metadata[0].name}"
    data["amazon_web_services"]["node_groups"] = {
        k: v for k, v in data["amazon_web_services"]["node_groups"].items() if not v.get("gpu")
    }
    init = _render(_config(data), "03-kubernetes-initialize")["main.tf.json"]["resource"]
    assert "kubernetes_daemon_set_v1" not in init


def test_gcp_gpu_pools_let_gke_install_the_driver() -> None:
    pools = _render(_config(_data("gcp.happy.yaml")), "02-infrastructure")["main.tf.json"]["resource"][
        "google_container_node_pool"
    ]
    accelerator = pools["gpu"]["node_config"][0]["guest_accelerator"][0]
    assert accelerator["type"] == "nvidia-tesla-t4"
    assert accelerator["gpu_driver_installation_config"] == [{"gpu_driver_version": "DEFAULT"}]
    assert pools["user"]["node_config"][0]["preemptible"] is True


def test_cloudflare_dns_record_points_at_the_load_balancer() -> None:
    config = _config(_data("aws-existing-network-gpu.happy.yaml"))
    main = _render(config, "04-kubernetes-ingress")["main.tf.json"]
    record = main["resource"]["cloudflare_dns_record"]["domain"]
    assert record["type"] == "CNAME" and record["name"] == "hub.example.org"
    assert "hostname" in record["content"]  # AWS load balancers have a hostname, not an IP
    assert main["data"]["cloudflare_zone"]["main"]["filter"] == {"name": "example.org"}
    assert "cloudflare" in main["terraform"]["required_providers"]


def test_dns_automation_with_another_provider_is_refused() -> None:
    data = _data("gcp.happy.yaml")
    data["dns"] = {"provider": "route53", "auto_provision": True}
    with pytest.raises(RenderError, match=r"dns\.provider: only cloudflare is automated"):
        _render(_config(data), "04-kubernetes-ingress")


def test_existing_subnets_without_a_security_group_are_refused() -> None:
    data = _data("aws-typical.happy.yaml")
    data["amazon_web_services"]["existing_subnet_ids"] = ["subnet-1"]
    with pytest.raises(ConfigError, match="existing_security_group_id: set existing_subnet_ids and"):
        _config(data)


def test_autoscaler_image_follows_the_kubernetes_minor_of_the_lockfile() -> None:
    # The cluster autoscaler supports its own Kubernetes minor only: bump them together.
    tag = LOCK.images["cluster_autoscaler"].tag.lstrip("v")
    assert tag.split(".")[:2] == LOCK.kubernetes.max_version.version.split(".")[:2]


def test_minimal_aws_config_picks_zones_at_deploy_and_the_lockfile_version() -> None:
    main = _render(_config(_data("aws-minimal.happy.yaml")), "02-infrastructure")["main.tf.json"]
    assert "aws_availability_zones" in main["data"]
    assert "slice(sort(data.aws_availability_zones.zones.names), 0" in main["locals"]["zones"]
    assert main["resource"]["aws_subnet"]["main"]["count"] == "${length(local.zones)}"
    assert main["resource"]["aws_eks_cluster"]["main"]["version"] == LOCK.kubernetes.max_version.version
    assert sorted(main["resource"]["aws_eks_node_group"]) == ["general", "user", "worker"]
