"""07-kubernetes-services: golden files, config values in the render, profile access,
optional services, secrets kept out, and the sandbox render applied by real Terraform.

Golden files: `pytest tests/test_services_stage.py --update-golden` rewrites only
tests/golden/<config>/07-kubernetes-services/ (tests/test_render_golden.py owns the rest).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from confmutate import SERVICE_SECTIONS, is_secret_ref
from scriptfakes import profile_list

from stagegraph.configfile import load_config
from stagegraph.errors import RenderError
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stages import services
from stagegraph.stages.svc_hub_scripts import PROFILES
from stagegraph.stages.svc_profiles import kubespawner_fragments
from stagegraph.tfjson import literal

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "configs"
GOLDEN = ROOT / "tests" / "golden"
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
STAGE_DIR = services.NAME
EXPLICIT = FIXTURES / "explicit-local.happy.yaml"
TOGGLES = FIXTURES / "services-toggles.happy.yaml"

CONFIGS = {
    "sandbox-default": ROOT / "nebari-config.yaml",
    "nebari-init-local": ROOT.parent / "shared" / "fixtures" / "nebari" / "local.yaml",
    "nebari-init-existing": FIXTURES / "nebari-existing.happy.yaml",
    "explicit-local": EXPLICIT,
    "services-toggles": TOGGLES,
}


def render(config: NebariConfig) -> dict[str, bytes]:
    return dict(render_stage(services.STAGE, config, LOCK, "lockfiles/versions.yaml").files)


def main_doc(config: NebariConfig) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render(config)["main.tf.json"])
    return doc


def config_from(path: Path, edit: Any = None) -> NebariConfig:
    data = yaml.safe_load(path.read_text())
    if edit is not None:
        edit(data)
    return NebariConfig.model_validate(data)


# --- golden files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_golden_07(name: str, update_golden: bool) -> None:
    path = CONFIGS[name]
    if not path.exists():
        pytest.skip(f"{path} not present (the shared fixture lives outside the repo)")
    files = render(load_config(path))
    target = GOLDEN / name / STAGE_DIR
    if update_golden:
        for old in target.glob("*") if target.exists() else []:
            old.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            (target / rel).write_bytes(data)
    on_disk = {p.name: p.read_bytes() for p in target.glob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(files), "07 files differ; rerun with --update-golden and review"
    for rel, data in files.items():
        assert on_disk[rel] == data, f"{rel} differs from tests/golden/{name}/{STAGE_DIR}; review and update"


# --- every config value shows up -----------------------------------------------------------


def _leaves(data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(data, dict):
        if is_secret_ref(data):
            return []
        return [leaf for k, v in data.items() for leaf in _leaves(v, (*path, str(k)))]
    if isinstance(data, list):
        return [leaf for i, v in enumerate(data) for leaf in _leaves(v, (*path, str(i)))]
    return [(path, data)]


def _explicit_service_leaves() -> list[tuple[tuple[str, ...], Any]]:
    data = yaml.safe_load(EXPLICIT.read_text())
    out = []
    for section in SERVICE_SECTIONS:
        for path, value in _leaves(data.get(section), (section,)):
            if path[:2] == ("monitoring", "healthchecks") or value is None:
                continue
            out.append((path, value))
    return out


def _appears(value: Any, text: str) -> bool:
    if isinstance(value, bool):
        return True  # every bool appears somewhere; the property test checks each one matters
    if isinstance(value, (int, float)):
        # Float fields render 7 as 7.0; either spelling is the config's value.
        forms = {json.dumps(value), json.dumps(float(value))}
        return any(re.search(rf"(?<![\w.]){re.escape(f)}(?![\w.])", text) for f in forms)
    return json.dumps(literal(str(value)), ensure_ascii=False)[1:-1] in text


@pytest.mark.parametrize(
    "path,value", _explicit_service_leaves(), ids=lambda x: ".".join(x) if isinstance(x, tuple) else ""
)
def test_every_value_of_the_explicit_service_sections_is_rendered(path: tuple[str, ...], value: Any) -> None:
    text = render(load_config(EXPLICIT))["main.tf.json"].decode()
    if path[0] == "default_images":
        name, tag = str(value).rsplit(":", 1)
        assert f'"name": "{name}"' in text and f'"tag": "{tag}"' in text, path
    else:
        assert _appears(value, text), f"{'.'.join(path)} = {value!r} is not in 07's render"


def test_dict_keys_of_the_config_show_up_too() -> None:
    text = render(load_config(EXPLICIT))["main.tf.json"].decode()
    for key in ("environment-ml.yaml", "GPU Worker", "CondaStore", "@jupyterlab/apputils-extension:themes"):
        assert f'"{key}"' in text, key


# --- profiles: who sees what ----------------------------------------------------------------


class _Group:
    def __init__(self, name: str) -> None:
        self.name = name


class _User:
    def __init__(self, name: str, groups: list[str], claims: dict[str, Any] | None = None) -> None:
        self.name = name
        self.groups = [_Group(g) for g in groups]
        self._claims = claims or {}

    async def get_auth_state(self) -> dict[str, Any]:
        return {"oauth_user": self._claims}


def _profile_list(values: dict[str, Any], user: _User) -> list[dict[str, Any]]:
    """Run the hub's rendered PROFILES script with a stand-in z2jh module (the chart's helper)."""
    return profile_list(values, user)


def _hub_values(config: NebariConfig) -> dict[str, Any]:
    values: dict[str, Any] = main_doc(config)["locals"]["jupyterhub_values"]
    assert values["hub"]["extraConfig"]["03-profiles.py"] == PROFILES
    return values


@pytest.mark.parametrize(
    "user,expected",
    [
        (_User("mallory", ["analyst"]), ["Small Instance"]),  # access all only
        (_User("alice", []), ["Small Instance", "GPU Instance"]),  # listed in users
        (_User("erin", ["gpu-users"]), ["Small Instance", "GPU Instance"]),  # member of a listed group
        (_User("root", ["admin"]), ["Small Instance", "GPU Instance"]),
        (
            _User("kim", ["analyst"], {"jupyterlab_profiles": ["Large Instance"]}),
            ["Small Instance", "Large Instance"],
        ),
    ],
    ids=["all", "yaml-user", "yaml-group", "yaml-admin-group", "keycloak-grant"],
)
def test_profile_access_all_users_groups_keycloak(user: _User, expected: list[str]) -> None:
    profiles = _profile_list(_hub_values(load_config(EXPLICIT)), user)
    assert [p["display_name"] for p in profiles] == expected
    for profile in profiles:
        assert not {"access", "users", "groups"} & set(profile)  # KubeSpawner never sees the rule
        override = profile["kubespawner_override"]
        home = [m for m in override["volume_mounts"] if m["mountPath"] == f"/home/{user.name}"]
        assert home == [{"name": "home", "mountPath": f"/home/{user.name}", "subPath": f"home/{user.name}"}]
        assert "mem_limit" in override


def test_profile_resources_and_group_mounts_reach_the_spawner() -> None:
    profiles = _profile_list(_hub_values(load_config(EXPLICIT)), _User("erin", ["gpu-users", "developer"]))
    gpu = next(p for p in profiles if p["display_name"] == "GPU Instance")["kubespawner_override"]
    assert gpu["cpu_limit"] == 8 and gpu["mem_limit"] == "32G"
    assert gpu["extra_resource_limits"] == {"nvidia.com/gpu": 1}
    shared = {m["mountPath"] for m in gpu["volume_mounts"] if m["name"] == "home"}
    assert {"/shared/developer", "/shared/gpu-users"} <= shared
    # developer -> Argo developer account token (Argo is enabled in this config)
    assert gpu["environment"]["ARGO_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == (
        "argo-developer.service-account-token"
    )


def test_toggles_profiles_by_group_and_by_user() -> None:
    values = _hub_values(load_config(TOGGLES))
    assert [p["display_name"] for p in _profile_list(values, _User("zoe", ["data-team"]))] == [
        "Everyone",
        "Team only",
    ]
    assert [p["display_name"] for p in _profile_list(values, _User("dave", []))] == [
        "Everyone",
        "Named users",
    ]
    assert [p["display_name"] for p in _profile_list(values, _User("zed", []))] == ["Everyone"]


def test_users_secrets_reach_only_their_groups_pods_once() -> None:
    values = _hub_values(load_config(TOGGLES))  # secrets: team-s3 (env), team-cert (file)
    both = _profile_list(values, _User("zoe", ["admin", "data-team"]))
    admin = _profile_list(values, _User("root", ["admin"]))
    nobody = _profile_list(values, _User("zed", []))
    for profile in both:
        override = profile["kubespawner_override"]
        cert = [v for v in override["volumes"] if v["name"] == "user-secret-team-cert"]
        assert cert == [
            {"name": "user-secret-team-cert", "secret": {"secretName": "nebari-user-secret-team-cert"}}
        ]
        assert override["environment"]["TEAM_S3"] == {
            "valueFrom": {"secretKeyRef": {"name": "nebari-user-secret-team-s3", "key": "value"}}
        }
    for profile in admin:
        override = profile["kubespawner_override"]
        assert "TEAM_S3" not in override["environment"]
        assert {"/etc/team/cert.pem"} <= {m["mountPath"] for m in override["volume_mounts"]}
    for profile in nobody:
        override = profile["kubespawner_override"]
        assert not [v for v in override["volumes"] if v["name"].startswith("user-secret-")]


def test_fragments_in_kubernetes_terms_become_kubespawner_terms() -> None:
    fragments = kubespawner_fragments(
        {
            "g": {
                "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                "volumes": [],
            }
        }
    )
    assert fragments == {
        "g": {"environment": {"A": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}}, "volumes": []}
    }


# --- optional services -----------------------------------------------------------------------


def _releases(doc: dict[str, Any]) -> set[str]:
    return set(doc["resource"].get("helm_release", {}))


def _set(path: str, value: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        node = data
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return edit


def test_all_services_on_in_the_explicit_config() -> None:
    doc = main_doc(load_config(EXPLICIT))
    assert _releases(doc) == {
        "jupyterhub",
        "dask_gateway",
        "argo_workflows",
        "kube_prometheus_stack",
        "loki",
        "promtail",
        "loki_minio",
        "conda_store_minio",
    }
    assert set(doc["output"]["urls"]["value"]) == {
        "jupyterhub",
        "conda_store",
        "dask_gateway",
        "argo_workflows",
        "grafana",
        "jhub_apps",
        "keycloak",
    }


@pytest.mark.parametrize(
    "path,gone_releases,gone_urls",
    [
        ("argo_workflows.enabled", {"argo_workflows"}, {"argo_workflows"}),
        ("monitoring.enabled", {"kube_prometheus_stack", "loki", "promtail", "loki_minio"}, {"grafana"}),
        ("monitoring.minio_enabled", {"loki_minio"}, set()),
        ("jhub_apps.enabled", set(), {"jhub_apps"}),
    ],
)
def test_toggles_remove_their_releases(path: str, gone_releases: set[str], gone_urls: set[str]) -> None:
    on = main_doc(load_config(EXPLICIT))
    off = main_doc(config_from(EXPLICIT, _set(path, False)))
    assert _releases(on) - _releases(off) == gone_releases
    assert _releases(off) <= _releases(on)
    assert set(on["output"]["urls"]["value"]) - set(off["output"]["urls"]["value"]) == gone_urls


def test_jhub_apps_toggle_adds_its_hub_service_and_secret() -> None:
    on = main_doc(load_config(EXPLICIT))
    off = main_doc(config_from(EXPLICIT, _set("jhub_apps.enabled", False)))
    assert "05-jhub-apps.py" in on["locals"]["jupyterhub_values"]["hub"]["extraConfig"]
    assert "05-jhub-apps.py" not in off["locals"]["jupyterhub_values"]["hub"]["extraConfig"]
    assert "jhub_apps_secrets" in on["resource"]["kubernetes_secret"]
    assert "jhub_apps_secrets" not in off["resource"]["kubernetes_secret"]
    assert on["locals"]["jupyterhub_values"]["custom"]["jhub-apps"]["overrides"] == {"service_workers": 4}


def test_workflow_controller_is_the_admission_webhook_with_the_pinned_image() -> None:
    doc = main_doc(config_from(EXPLICIT, _set("argo_workflows.nebari_workflow_controller.image_tag", None)))
    manifests = doc["resource"]["kubectl_manifest"]
    assert {
        "workflow_controller",
        "workflow_controller_validate_webhook",
        "workflow_controller_mutate_webhook",
    } <= set(manifests)
    pin = LOCK.images["nebari_workflow_controller"]
    container = doc["locals"]["workflow_controller_manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{pin.image}:{pin.tag}"
    webhook = doc["locals"]["workflow_controller_validate_webhook_manifest"]
    assert webhook["kind"] == "ValidatingWebhookConfiguration"
    assert webhook["webhooks"][0]["rules"][0]["resources"] == ["workflows"]
    held = main_doc(
        config_from(EXPLICIT, _set("argo_workflows.nebari_workflow_controller.image_tag", "held-1"))
    )
    held_container = held["locals"]["workflow_controller_manifest"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert held_container["image"] == f"{pin.image}:held-1"
    assert "workflow_controller" not in main_doc(load_config(TOGGLES))["resource"]["kubectl_manifest"]


def test_grafana_roles_come_from_keycloak_roles() -> None:
    grafana = main_doc(load_config(EXPLICIT))["locals"]["kube_prometheus_stack_values"]["grafana"]
    oauth = grafana["grafana.ini"]["auth.generic_oauth"]
    assert oauth["role_attribute_path"] == (
        "contains(roles[*], 'grafana_admin') && 'Admin' || contains(roles[*], 'grafana_developer') && 'Editor' "
        "|| contains(roles[*], 'grafana_viewer') && 'Viewer' || 'Viewer'"
    )
    assert oauth["client_id"] == '${lookup(var.clients, "grafana", "grafana")}'
    assert grafana["envValueFrom"]["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"]["secretKeyRef"]["name"] == (
        "keycloak-client-grafana"
    )


# --- images ---------------------------------------------------------------------------------


def test_null_images_use_the_lockfile_pins_and_set_ones_win() -> None:
    doc = main_doc(load_config(TOGGLES))
    hub = doc["locals"]["jupyterhub_values"]
    for key, pin_name in (("hub", "jupyterhub"), ("singleuser", "jupyterlab")):
        pin = LOCK.images[pin_name]
        assert (hub[key]["image"]["name"], hub[key]["image"]["tag"]) == (pin.image, pin.tag)
    worker = LOCK.images["dask_worker"]
    assert doc["locals"]["dask_gateway_values"]["gateway"]["backend"]["image"] == {
        "name": worker.image,
        "tag": worker.tag,
    }
    conda = doc["locals"]["conda_store_server_manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert conda["image"] == f"{LOCK.images['conda_store'].image}:2025.2.0"  # tag held, name pinned
    custom = main_doc(
        config_from(TOGGLES, _set("default_images.jupyterlab", "registry.example.net:5000/lab:7"))
    )
    assert (
        custom["locals"]["jupyterhub_values"]["singleuser"]["image"]["name"]
        == "registry.example.net:5000/lab"
    )
    assert custom["locals"]["jupyterhub_values"]["singleuser"]["image"]["tag"] == "7"


def test_an_image_without_a_tag_is_a_one_line_error_naming_the_field() -> None:
    config = config_from(TOGGLES, _set("default_images.dask_worker", "registry.example.net:5000/worker"))
    with pytest.raises(RenderError) as err:
        render(config)
    assert str(err.value).startswith("nebari-config.yaml: default_images.dask_worker: ")
    assert "\n" not in str(err.value)


def test_unsupported_shared_storage_is_refused_with_the_fix() -> None:
    with pytest.raises(RenderError, match=r"storage.type: cephfs is not rendered for provider existing yet"):
        render(config_from(TOGGLES, _set("storage.type", "cephfs")))


# --- secrets --------------------------------------------------------------------------------

CANARY = "CANARY-gallery-token-17"


def _with_plain_gallery_token(data: dict[str, Any]) -> None:
    data["jupyterlab"]["gallery_settings"]["exhibits"][1]["token"] = CANARY


def test_no_secret_reaches_the_rendered_files() -> None:
    files = render(config_from(EXPLICIT, _with_plain_gallery_token))
    text = b"".join(files.values()).decode()
    assert CANARY not in text
    assert "${var.gallery_token_1}" in text  # the token travels as a sensitive variable
    declared = json.loads(files["variables.tf.json"])["variable"]
    assert declared["gallery_token_1"]["sensitive"] is True
    sops = render(load_config(EXPLICIT))
    assert b"secrets/gallery.enc.yaml" not in b"".join(sops.values())
    # OAuth client secrets: referenced by secret name, never as values or variables.
    assert "client_secret" not in {k for k in declared if "secret" in k}
    assert '"key": "client_secret"' in text and '"name": "keycloak-client-jupyterhub"' in text


def test_too_many_gallery_tokens_is_a_one_line_error() -> None:
    def edit(data: dict[str, Any]) -> None:
        exhibit = {"git": "https://example.org/x.git", "title": "x", "token": "t"}
        data["jupyterlab"]["gallery_settings"]["exhibits"] = [dict(exhibit) for _ in range(9)]

    with pytest.raises(RenderError) as err:
        render(config_from(EXPLICIT, edit))
    assert str(err.value) == (
        "nebari-config.yaml: jupyterlab.gallery_settings.exhibits.8.token: only the first 8 exhibits may "
        "carry a token; move this exhibit up or drop its token"
    )


# --- forward auth, sandbox and real renders --------------------------------------------------


def test_forward_auth_serves_08() -> None:
    doc = main_doc(load_config(EXPLICIT))
    assert (
        doc["output"]["forwardauth_service"]["value"]
        == "http://forwardauth-service.${var.namespace}.svc:4180"
    )
    middleware = doc["locals"]["middleware_forwardauth_manifest"]
    assert middleware["spec"]["forwardAuth"]["address"] == doc["output"]["forwardauth_service"]["value"]
    proxy = doc["locals"]["forwardauth_deployment_manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert proxy["image"] == f"{LOCK.images['oauth2_proxy'].image}:{LOCK.images['oauth2_proxy'].tag}"
    assert any(a.startswith("--oidc-issuer-url=${var.keycloak_url}/realms/") for a in proxy["args"])


def test_real_render_uses_the_pinned_providers_and_the_sandbox_only_terraform_data() -> None:
    real = main_doc(load_config(EXPLICIT))
    assert set(real["terraform"]["required_providers"]) == {"kubernetes", "helm", "kubectl", "random", "tls"}
    for name, body in real["terraform"]["required_providers"].items():
        assert body["version"] == f"= {LOCK.providers[name].version}"
    sandbox = main_doc(config_from(EXPLICIT, _to_sandbox))
    assert "provider" not in sandbox and "required_providers" not in sandbox["terraform"]
    assert set(sandbox["resource"]) == {"terraform_data"}
    real_count = sum(len(v) for v in real["resource"].values())
    assert len(sandbox["resource"]["terraform_data"]) == real_count
    assert "data" not in real  # nothing read back from the cluster: no secret in state


def _to_sandbox(data: dict[str, Any]) -> None:
    data["provider"] = "sandbox"
    section = data.pop("local")
    section.pop("kube_context", None)
    data["sandbox"] = section


@pytest.mark.e2e
@pytest.mark.slow
def test_sandbox_render_of_the_explicit_config_applies_with_real_terraform(tmp_path: Path) -> None:
    from stagegraph.terraform import Terraform, find_terraform

    stage = tmp_path / "stage"
    stage.mkdir()
    for name, data in render(config_from(EXPLICIT, _to_sandbox)).items():
        (stage / name).write_bytes(data)
    variables = {
        "kubeconfig_path": "/sandbox/kubeconfig",
        "kube_context": None,
        "namespace": "prod",
        "domain": "lab.example.org",
        "certificate_type": "self-signed",
        "certificate_ca": "c2FuZGJveC1jZXJ0aWZpY2F0ZQ==",
        "node_selectors": {
            g: {"key": "kubernetes.io/os", "value": "linux"} for g in ("general", "user", "worker")
        },
        "registry_pull_secret": None,
        "keycloak_url": "https://lab.example.org/auth",
        "keycloak_internal_url": "http://keycloak-http.prod.svc:80/auth",
        "realm_id": "nebari",
        "groups": ["admin", "analyst", "developer"],
        "clients": {"jupyterhub": "hub-client"},
        "nfs_endpoint": None,  # no EFS: the home volume has its own NFS server
    }
    (stage / "vars.tfvars.json").write_text(json.dumps(variables))
    tf = Terraform(find_terraform("auto"), stage, tmp_path / "log.txt", extra_env={"CHECKPOINT_DISABLE": "1"})
    tf.init()
    tf.apply(["vars.tfvars.json"])
    out = tf.output()
    assert out["urls"].value["argo_workflows"] == "https://lab.example.org/argo/"
    assert out["forwardauth_service"].value == "http://forwardauth-service.prod.svc:4180"
    state = json.loads((stage / "terraform.tfstate").read_text())
    hub = next(r for r in state["resources"] if r["name"] == "helm_release__jupyterhub")
    values = json.loads(hub["instances"][0]["attributes"]["input"]["value"]["values"][0])
    assert values["hub"]["config"]["GenericOAuthenticator"]["client_id"] == "hub-client"
    assert values["hub"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert values["cull"]["timeout"] == (30 + 60) * 60  # (max(kernel, terminal) + shutdown) minutes
