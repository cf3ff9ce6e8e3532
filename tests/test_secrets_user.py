"""Secrets for platform users: Kubernetes secrets from SOPS, mounted for some groups only.

A test stage renders `user_secret_mounts` the way stage 07 will; its sandbox render is
applied by real Terraform with the value the engine would pass (`resolve_secret` on the
`secrets` section, decrypted by the real sops): the value reaches Terraform's state and
nothing else on disk.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from test_sops_support import CANARY, AgeKeys, project_at, sops_project, write_config

from stagegraph.errors import UndeclaredInputError
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage, write_stage
from stagegraph.secretvalues import resolve_secret, secret_digest_input
from stagegraph.sops.store import STORE
from stagegraph.sops.tasks import secrets_encrypt
from stagegraph.stage import RenderContext, Rendered, Stage
from stagegraph.stages.user_secrets import (
    merge_overrides,
    user_secret_mounts,
    user_secrets_input,
)
from stagegraph.tfjson import TerraformModule

ROOT = Path(__file__).resolve().parents[1]
SECRETS = [
    {
        "name": "s3-token",
        "type": "env",
        "sops": "secrets/users.enc.yaml",
        "key": "s3.token",
        "groups": ["analyst", "admin"],
    },
    {
        "name": "kubeconfig",
        "type": "file",
        "sops": "secrets/users.enc.yaml",
        "key": "kube",
        "groups": ["admin"],
        "mount_path": "/home/jovyan/.kube/config",
    },
    {
        "name": "registry",
        "type": "image_pull_secret",
        "sops": "secrets/users.enc.yaml",
        "key": "docker",
        "groups": ["analyst"],
    },
]
captured: dict[str, Any] = {}


def _render(ctx: RenderContext) -> Rendered:
    m = TerraformModule(sandbox=ctx.sandbox, comment="user secrets test stage")
    m.require(ctx.pins.version("terraform"), {})
    captured["fragments"] = user_secret_mounts(ctx, m, "dev")
    m.output("count", len(captured["fragments"]), "groups with secrets")
    return {"main.tf.json": m.document()}


STAGE = Stage(
    name="07-test-user-secrets",
    description="test",
    render=_render,
    config_sections=("secrets",),
    pins=("terraform",),
    sensitive=(user_secrets_input(),),
)


@pytest.fixture
def root(tmp_path: Path, keys: AgeKeys) -> Path:
    root = sops_project(tmp_path / "project", keys, secrets=SECRETS)
    project = project_at(root)
    secrets_encrypt(project, name="users", key="s3.token", value=CANARY + "-s3")
    secrets_encrypt(project, name="users", key="kube", value=CANARY + "-kube")
    secrets_encrypt(
        project, name="users", key="docker", value='{"auths": {"r.example.com": {"auth": "' + CANARY + '"}}}'
    )
    STORE.clear()
    return root


def test_each_group_gets_exactly_its_secrets(root: Path) -> None:
    project = project_at(root)
    render_stage(
        STAGE, project.config, load_lockfile(ROOT / "lockfiles" / "versions.yaml"), "lockfiles/versions.yaml"
    )
    fragments = captured["fragments"]
    assert fragments == {
        "admin": {
            "environment": {
                "S3_TOKEN": {
                    "valueFrom": {"secretKeyRef": {"name": "nebari-user-secret-s3-token", "key": "value"}}
                }
            },
            "volumes": [
                {"name": "user-secret-kubeconfig", "secret": {"secretName": "nebari-user-secret-kubeconfig"}}
            ],
            "volume_mounts": [
                {
                    "name": "user-secret-kubeconfig",
                    "mountPath": "/home/jovyan/.kube/config",
                    "subPath": "config",
                    "readOnly": True,
                }
            ],
        },
        "analyst": {
            "environment": {
                "S3_TOKEN": {
                    "valueFrom": {"secretKeyRef": {"name": "nebari-user-secret-s3-token", "key": "value"}}
                }
            },
            "image_pull_secrets": ["nebari-user-secret-registry"],
        },
    }
    # A user in both groups: one env entry, every volume and pull secret once.
    both = merge_overrides([fragments["admin"], fragments["analyst"], fragments["admin"]])
    assert both["environment"] == fragments["admin"]["environment"]
    assert both["volumes"] == fragments["admin"]["volumes"] and both["image_pull_secrets"] == [
        "nebari-user-secret-registry"
    ]


def test_the_render_holds_references_never_values(root: Path) -> None:
    project = project_at(root)
    rendered = render_stage(STAGE, project.config, load_lockfile(ROOT / "lockfiles" / "versions.yaml"), "x")
    main = json.loads(rendered.files["main.tf.json"])
    twins = main["resource"]["terraform_data"]
    secret = twins["kubernetes_secret__user_secret_registry"]["input"]
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["data"] == {".dockerconfigjson": '${local.user_secret_values["registry"]}'}
    assert main["locals"]["user_secret_values"] == "${jsondecode(var.user_secrets)}"
    variables = json.loads(rendered.files["variables.tf.json"])["variable"]
    assert variables["user_secrets"]["sensitive"] is True
    for content in rendered.files.values():
        assert CANARY.encode() not in content


def test_reading_secrets_without_declaring_the_section_is_refused(root: Path) -> None:
    from dataclasses import replace

    project = project_at(root)
    undeclared = replace(STAGE, config_sections=())
    with pytest.raises(UndeclaredInputError, match="add 'secrets' to its config_sections"):
        render_stage(undeclared, project.config, load_lockfile(ROOT / "lockfiles" / "versions.yaml"), "x")


def test_the_engine_value_is_one_json_object_and_its_input_follows_each_ciphertext(root: Path) -> None:
    project = project_at(root)
    value = resolve_secret(project.config, "secrets", project.config_name, root)
    assert value is not None
    assert json.loads(value)["s3-token"] == CANARY + "-s3"
    assert set(json.loads(value)) == {"s3-token", "kubeconfig", "registry"}
    before = secret_digest_input(project.config, "secrets", root)
    secrets_encrypt(project, name="users", key="kube", value="rotated")
    assert secret_digest_input(project.config, "secrets", root) != before
    write_config(root)
    assert resolve_secret(project_at(root).config, "secrets", "c", root) is None


@pytest.mark.e2e
def test_sandbox_apply_puts_values_in_state_only(root: Path, tmp_path: Path) -> None:
    from stagegraph.terraform import Terraform, find_terraform

    project = project_at(root)
    rendered = render_stage(STAGE, project.config, load_lockfile(ROOT / "lockfiles" / "versions.yaml"), "x")
    out = tmp_path / "rendered"
    write_stage(out, rendered)
    stage_dir = out / STAGE.name
    value = resolve_secret(project.config, "secrets", project.config_name, root)
    assert value is not None
    lines: list[str] = []
    tf = Terraform(
        find_terraform(), stage_dir, tmp_path / "apply.log", {"TF_VAR_user_secrets": value}, lines.append
    )
    tf.init()
    tf.apply()
    state = stage_dir / "terraform.tfstate"
    assert CANARY in state.read_text()  # the value did reach Terraform
    assert stat.S_IMODE(state.stat().st_mode) & 0o077 == 0
    assert CANARY not in "\n".join(lines)
    assert CANARY not in (tmp_path / "apply.log").read_text()
    for path in stage_dir.rglob("*"):
        if path.is_file() and not path.name.startswith("terraform.tfstate"):
            assert CANARY.encode() not in path.read_bytes(), path
