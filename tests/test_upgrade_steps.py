"""Each config migration of `doit upgrade`, one release at a time (stagegraph.upgrade.steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from stagegraph.upgrade.model import UpgradeError
from stagegraph.upgrade.run import upgrade_text
from stagegraph.upgrade.steps import STEPS, steps_between
from stagegraph.upgrade.versions import CURRENT, parse

CONFIG = Path("/deploy/nebari-config.yaml")


def previous(version: str) -> str:
    earlier = [v for v in STEPS if parse(v) < parse(version)]
    return max(earlier, key=parse) if earlier else "0.3.11"


def step_to(
    version: str, body: str, decisions: dict[str, str] | None = None
) -> tuple[dict[str, Any], Any, str]:
    """Run exactly the step `version` on `body` (a config of the release before it)."""
    start = previous(version)
    text = f"project_name: demo\nnebari_version: {start}\n{body}"
    new, ctx, ran = upgrade_text(text, CONFIG, decisions or {}, finish=version)
    assert ran == [version]
    data = yaml.safe_load(new)
    assert data["nebari_version"] == version
    return data, ctx, new


def test_there_are_26_steps_from_0_3_12_to_current() -> None:
    versions = sorted(STEPS, key=parse)
    assert len(versions) == 26
    assert versions[0] == "0.3.12" and versions[-1] == CURRENT
    assert [s.version for s in steps_between("2025.4.1", CURRENT)] == ["2025.4.2", "2025.6.1", "2025.10.1"]


@pytest.mark.parametrize(
    "version",
    ["2024.3.1", "2024.3.2", "2024.3.3", "2024.5.1", "2024.9.1", "2025.3.1", "2025.4.2", "2025.6.1"],
)
def test_releases_without_format_change_only_move_the_version(version: str) -> None:
    body = "provider: local\n# a comment that stays\nnamespace: dev\n"
    data, ctx, new = step_to(version, body)
    assert data == {
        "project_name": "demo",
        "nebari_version": version,
        "provider": "local",
        "namespace": "dev",
    }
    assert "# a comment that stays" in new
    assert not ctx.actions


def test_0_3_12_adds_a_conda_store_image() -> None:
    data, _, _ = step_to("0.3.12", "provider: local\n")
    assert data["default_images"]["conda_store"].startswith("quansight/conda-store-server:")


def test_0_4_0_moves_users_to_a_realm_import_and_drops_retired_keys() -> None:
    body = """\
provider: azure
azure:
  project: PLACEHOLDER
  region: Central US
terraform_modules: {}
default_images:
  conda_store: quansight/conda-store-server:v0.3.3
  dask_gateway: quansight/dask-gateway:v0.3.14
security:
  authentication:
    type: GitHub
    config:
      client_id: x
      oauth_callback_url: https://old/hub/oauth_callback
      scope: [read]
  users:
    alice: {primary_group: admin, secondary_groups: [users, sci]}
  groups:
    admin: {gid: 100}
    users: {gid: 101}
    sci: {gid: 102}
"""
    data, ctx, _ = step_to("0.4.0", body)
    security = data["security"]
    assert "users" not in security and "groups" not in security
    assert security["shared_users_group"] is True
    assert security["authentication"]["config"] == {"client_id": "x"}
    assert "terraform_modules" not in data and data["default_images"] == {}
    assert "project" not in data["azure"]
    assert data["prevent_deploy"] is True
    # No generated password: nothing secret is written in plain text.
    assert "keycloak" not in security
    realm = json.loads(ctx.files[CONFIG.parent / "nebari-users-import.json"])
    assert realm["users"] == [{"username": "alice", "enabled": True, "groups": ["admin", "sci", "users"]}]
    assert realm["groups"] == [{"name": "sci", "path": "/sci"}]


def test_0_4_0_custom_authenticator_needs_an_explicit_decision() -> None:
    body = "provider: local\nsecurity:\n  authentication:\n    type: custom\n"
    with pytest.raises(UpgradeError, match=r"--decide custom-auth:<password>"):
        step_to("0.4.0", body)
    data, _, _ = step_to("0.4.0", body, {"custom-auth": "password"})
    assert data["security"]["authentication"] == {"type": "password"}


def test_0_4_1_sets_profile_access() -> None:
    body = "profiles:\n  jupyterlab:\n  - display_name: a\n  - display_name: b\n    groups: [x]\n"
    data, _, _ = step_to("0.4.1", body)
    assert [p["access"] for p in data["profiles"]["jupyterlab"]] == ["all", "yaml"]


def test_2023_4_2_records_argo_crd_deletion_as_a_deploy_action() -> None:
    _, ctx, _ = step_to("2023.4.2", "namespace: prod\n")
    (action,) = ctx.actions
    assert (action.stage, action.when, action.kind) == (
        "07-kubernetes-services",
        "before",
        "kubernetes-delete",
    )
    names = [o["name"] for o in action.objects]
    assert "workflows.argoproj.io" in names and "argo-admin" in names
    assert {o.get("namespace") for o in action.objects if o["plural"] == "serviceaccounts"} == {"prod"}


def test_2023_7_1_stops_aws_deploys() -> None:
    data, _, _ = step_to("2023.7.1", "provider: aws\n")
    assert data["prevent_deploy"] is True
    data, _, _ = step_to("2023.7.1", "provider: local\n")
    assert "prevent_deploy" not in data


def test_2023_7_2_turns_the_workflow_controller_on_unless_told_not_to() -> None:
    body = "argo_workflows:\n  enabled: true\n"
    data, _, _ = step_to("2023.7.2", body)
    assert data["argo_workflows"]["nebari_workflow_controller"] == {"enabled": True}
    data, _, _ = step_to("2023.7.2", body, {"workflow-controller": "no"})
    assert "nebari_workflow_controller" not in data["argo_workflows"]


def test_2023_10_1_removes_cdsdashboards_and_prevents_deploy() -> None:
    data, _, _ = step_to("2023.10.1", "cdsdashboards:\n  enabled: true\n")
    assert "cdsdashboards" not in data and data["prevent_deploy"] is True


def test_2023_11_1_removes_clearml_prefect_kbatch() -> None:
    data, ctx, _ = step_to("2023.11.1", "kbatch:\n  enabled: true\nprefect:\n  enabled: false\n")
    assert "kbatch" not in data and "prefect" not in data
    assert any("removed kbatch" in n for n in ctx.notes)


@pytest.mark.parametrize("version", ["2023.12.1", "2024.1.1", "2024.7.1"])
def test_notice_only_releases_leave_the_config_alone(version: str) -> None:
    data, ctx, _ = step_to(version, "provider: local\n")
    assert set(data) == {"project_name", "nebari_version", "provider"}
    assert not ctx.actions


def test_2024_4_1_default_node_groups_only_when_asked() -> None:
    body = "provider: aws\namazon_web_services:\n  region: us-east-1\n"
    data, _, _ = step_to("2024.4.1", body)
    assert "node_groups" not in data["amazon_web_services"]
    data, _, _ = step_to("2024.4.1", body, {"default-node-groups": "yes"})
    assert set(data["amazon_web_services"]["node_groups"]) == {"general", "user", "worker"}


def test_2024_6_1_prometheus_actions_and_gcp_node_groups() -> None:
    data, ctx, _ = step_to("2024.6.1", "provider: gcp\ngoogle_cloud_platform:\n  region: r\n")
    kinds = {a.id: a.kind for a in ctx.actions}
    assert kinds == {"2024.6.1-prometheus-crds": "manual", "2024.6.1-node-exporter": "kubernetes-delete"}
    assert "node_groups" not in data["google_cloud_platform"]
    data, _, _ = step_to(
        "2024.6.1", "provider: gcp\ngoogle_cloud_platform:\n  region: r\n", {"gcp-node-groups": "n1"}
    )
    assert data["google_cloud_platform"]["node_groups"]["general"]["instance"] == "n1-standard-8"
    _, ctx, _ = step_to("2024.6.1", "monitoring:\n  enabled: false\n")
    assert not ctx.actions


def test_2024_11_1_shared_directory_roles_become_a_post_keycloak_action_when_asked() -> None:
    _, ctx, _ = step_to("2024.11.1", "provider: local\n")
    assert not ctx.actions
    _, ctx, _ = step_to("2024.11.1", "provider: local\n", {"shared-directory-roles": "yes"})
    (action,) = ctx.actions
    assert (action.stage, action.when) == ("06-kubernetes-keycloak-configuration", "after")


def test_2024_12_1_refuses_digitalocean() -> None:
    with pytest.raises(UpgradeError, match=r"provider: do is no longer supported; change it to existing"):
        step_to("2024.12.1", "provider: do\n")


def test_2025_2_1_azure_state_rename_is_a_pre_deploy_action() -> None:
    _, ctx, _ = step_to("2025.2.1", "provider: azure\nazure:\n  region: x\n")
    (action,) = ctx.actions
    assert action.kind == "tfstate-rename"
    assert action.renames == {"enable_https_traffic_only": "https_traffic_only_enabled"}
    _, ctx, _ = step_to("2025.2.1", "provider: local\n")
    assert not ctx.actions


def test_2025_4_1_taints_opt_out_writes_empty_taints() -> None:
    body = "provider: aws\namazon_web_services:\n  region: r\n  node_groups:\n    general: {instance: m5.xlarge}\n"
    data, _, _ = step_to("2025.4.1", body)
    assert "taints" not in data["amazon_web_services"]["node_groups"]["general"]
    data, _, _ = step_to("2025.4.1", body, {"node-taints": "opt-out"})
    assert data["amazon_web_services"]["node_groups"]["general"]["taints"] == []


def test_2025_10_1_bitnami_patches_are_manual_pre_deploy_actions() -> None:
    _, ctx, _ = step_to("2025.10.1", "namespace: prod\n")
    by_stage: dict[str, list[str]] = {}
    for a in ctx.actions:
        assert a.kind == "manual" and a.when == "before"
        assert all("--namespace prod" in c and "bitnamilegacy/" in c for c in a.commands)
        by_stage.setdefault(a.stage, []).append(a.id)
    assert by_stage["05-kubernetes-keycloak"] == ["2025.10.1-bitnami-keycloak"]
    assert len(by_stage["07-kubernetes-services"]) == 4  # conda-store postgres, minio, redis; loki minio
    _, ctx, _ = step_to("2025.10.1", "conda_store:\n  enabled: false\nmonitoring:\n  enabled: false\n")
    assert [a.id for a in ctx.actions] == ["2025.10.1-bitnami-keycloak"]


def test_nebari_images_move_to_the_final_release_unless_kept() -> None:
    text = (
        "project_name: demo\nnebari_version: 2025.4.2\ndefault_images:\n"
        "  jupyterlab: quay.io/nebari/nebari-jupyterlab:2025.4.2\n  jupyterhub: example.org/own:1\n"
    )
    new, _, _ = upgrade_text(text, CONFIG, {})
    images = yaml.safe_load(new)["default_images"]
    assert images == {
        "jupyterlab": f"quay.io/nebari/nebari-jupyterlab:{CURRENT}",
        "jupyterhub": "example.org/own:1",
    }
    new, _, _ = upgrade_text(text, CONFIG, {"image-tags": "keep"})
    assert yaml.safe_load(new)["default_images"]["jupyterlab"].endswith(":2025.4.2")


def test_a_decision_no_step_asks_for_is_refused() -> None:
    text = "project_name: demo\nnebari_version: 2025.6.1\n"
    with pytest.raises(UpgradeError, match=r"--decide custom-auth: no step from 2025\.6\.1"):
        upgrade_text(text, CONFIG, {"custom-auth": "password"})
