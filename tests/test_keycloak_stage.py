"""Stages 05 (Keycloak) and 06 (its realm): renders, secrets, inputs and the check after apply.

The check is exercised against a stand-in for Keycloak: a small HTTP server on 127.0.0.1
that answers the master realm endpoint the way Keycloak does (200 with the realm's public
JSON under /auth/realms/master, 404 elsewhere).
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from kubefake import send_json

from stagegraph.errors import RenderError
from stagegraph.graph import build_graph
from stagegraph.lockfile import ChartPin, ImagePin, load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stage import CheckContext, Upstream
from stagegraph.stages import keycloak, keycloak_configuration
from stagegraph.stages.builtin import BUILTIN_STAGES
from stagegraph.stages.common import NodeSelector
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.ingress import IngressOutputs
from stagegraph.stages.keycloak import KeycloakCheckError, KeycloakOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
FIXTURES = ROOT / "tests" / "fixtures" / "configs"
GOLDEN_CONFIGS = {
    "sandbox-default": ROOT / "nebari-config.yaml",
    "nebari-init-local": ROOT / "tests" / "fixtures" / "configs" / "shared-local.happy.yaml",
    "nebari-init-existing": FIXTURES / "nebari-existing.happy.yaml",
    "explicit-local": FIXTURES / "explicit-local.happy.yaml",
}
CANARY = "canary-root-pw-7f3a9c"
IDP_CANARY = "canary-idp-secret-51d2e8"
EXISTING = yaml.safe_load((FIXTURES / "nebari-existing.happy.yaml").read_text())

AUTH = {
    "password": {"type": "password"},
    "GitHub": {"type": "GitHub", "config": {"client_id": "gh-client", "client_secret": IDP_CANARY}},
    "Auth0": {
        "type": "Auth0",
        "config": {"client_id": "a0-client", "client_secret": IDP_CANARY, "auth0_subdomain": "acme"},
    },
    "custom": {
        "type": "custom",
        "config": {
            "provider_id": "okta",
            "display_name": "Okta",
            "client_id": "okta-client",
            "client_secret": IDP_CANARY,
            "authorization_url": "https://acme.okta.com/oauth2/v1/authorize",
            "token_url": "https://acme.okta.com/oauth2/v1/token",
            "user_info_url": "https://acme.okta.com/oauth2/v1/userinfo",
            "issuer": "https://acme.okta.com",
        },
    },
}


def _config(data: dict[str, Any], **security: Any) -> NebariConfig:
    data = copy.deepcopy(data)
    section = data.setdefault("security", {})
    section.update(security)
    return NebariConfig.model_validate(data)


def _doc(stage: Any, config: NebariConfig, name: str = "main.tf.json") -> dict[str, Any]:
    rendered = render_stage(stage, config, LOCK, "lockfiles/versions.yaml")
    doc: dict[str, Any] = json.loads(rendered.files[name])
    return doc


# --- secrets ----------------------------------------------------------------------------------


def _with_canaries(path: Path, auth: dict[str, Any] | None = None) -> NebariConfig:
    data = yaml.safe_load(path.read_text())
    security = data.setdefault("security", {})
    security.setdefault("keycloak", {})["initial_root_password"] = CANARY
    if auth is not None:
        security["authentication"] = auth
    elif "config" in security.get("authentication", {}):
        security["authentication"]["config"]["client_secret"] = IDP_CANARY
    return NebariConfig.model_validate(data)


def _every_rendered_byte(config: NebariConfig) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for stage in build_graph(BUILTIN_STAGES).stages:
        rendered = render_stage(stage, config, LOCK, "lockfiles/versions.yaml")
        out += [(f"{rendered.directory}/{n}", data) for n, data in rendered.files.items()]
        out.append((f"{rendered.directory}/(render inputs)", json.dumps(rendered.inputs).encode()))
    return out


@pytest.mark.parametrize("name", sorted(GOLDEN_CONFIGS))
def test_a_canary_root_password_is_in_no_rendered_file(name: str) -> None:
    path = GOLDEN_CONFIGS[name]
    config = _with_canaries(path)
    assert config.security.keycloak.initial_root_password is not None
    files = _every_rendered_byte(config)
    assert len(files) > 10
    leaked = [rel for rel, data in files if CANARY.encode() in data or IDP_CANARY.encode() in data]
    assert leaked == []


@pytest.mark.parametrize("auth", sorted(AUTH))
def test_identity_provider_secrets_are_in_no_rendered_file(auth: str) -> None:
    config = _with_canaries(FIXTURES / "nebari-existing.happy.yaml", AUTH[auth])
    leaked = [rel for rel, data in _every_rendered_byte(config) if IDP_CANARY.encode() in data]
    assert leaked == []


def test_both_stages_declare_the_root_password_as_the_same_sensitive_variable() -> None:
    for stage in (keycloak.STAGE, keycloak_configuration.STAGE):
        sensitive = {s.variable: s.config_path for s in stage.sensitive}
        assert sensitive["keycloak_root_password"] == "security.keycloak.initial_root_password"
        rendered = render_stage(stage, _config(EXISTING), LOCK, "lockfiles/versions.yaml")
        variables = json.loads(rendered.files["variables.tf.json"])["variable"]
        assert variables["keycloak_root_password"]["sensitive"] is True
    secret = _doc(keycloak.STAGE, _config(EXISTING))["resource"]["kubernetes_secret"]["admin"]
    assert secret["data"]["password"] == "${var.keycloak_root_password}"
    provider = _doc(keycloak_configuration.STAGE, _config(EXISTING))["provider"]["keycloak"]
    assert provider["password"] == "${var.keycloak_root_password}"
    assert provider["username"] == "${var.admin_username}"


def test_a_real_render_without_root_password_names_the_field() -> None:
    data = copy.deepcopy(EXISTING)
    del data["security"]["keycloak"]["initial_root_password"]
    with pytest.raises(RenderError, match=r"security\.keycloak\.initial_root_password is not set"):
        render_stage(keycloak.STAGE, NebariConfig.model_validate(data), LOCK, "lockfiles/versions.yaml")
    sandbox = NebariConfig.model_validate(yaml.safe_load((ROOT / "nebari-config.yaml").read_text()))
    assert sandbox.security.keycloak.initial_root_password is None
    assert "main.tf.json" in render_stage(keycloak.STAGE, sandbox, LOCK, "lockfiles/versions.yaml").files


# --- 05: the chart -----------------------------------------------------------------------------------


def test_keycloak_comes_from_the_pinned_chart_and_image() -> None:
    doc = _doc(keycloak.STAGE, _config(EXISTING))
    release = doc["resource"]["helm_release"]["keycloak"]
    chart = LOCK.pin("helm_charts.keycloakx")
    image = LOCK.pin("images.keycloak")
    assert isinstance(chart, ChartPin) and isinstance(image, ImagePin)
    assert (release["repository"], release["chart"], release["version"]) == (
        chart.repository,
        chart.chart,
        chart.version,
    )
    values = doc["locals"]["keycloak_values"]
    assert values["image"] == {"repository": image.image, "tag": image.tag}
    assert values["http"]["relativePath"] == "/auth"
    assert values["ingress"]["rules"] == [
        {"host": "${var.domain}", "paths": [{"path": "/auth/", "pathType": "Prefix"}]}
    ]
    env = yaml.safe_load(values["extraEnv"])  # YAML list items, as the chart splices them
    password = next(e for e in env if e["name"] == "KC_BOOTSTRAP_ADMIN_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"] == {"name": keycloak.ADMIN_SECRET, "key": "password"}
    hostname = next(e for e in env if e["name"] == "KC_HOSTNAME")
    assert hostname["value"] == "${var.base_url}/auth"


def test_overrides_are_merged_into_the_chart_values() -> None:
    overrides = {
        "resources": {"limits": {"memory": "2Gi"}},
        "ingress": {"annotations": {"example.com/extra": "yes"}},
        "database": {"vendor": "postgres", "hostname": "db.example.com"},
        "replicas": 2,
        "extraLabels": {"team": "${not-interpolated}"},
    }
    keycloak_section = {**EXISTING["security"]["keycloak"], "overrides": overrides}
    values = _doc(keycloak.STAGE, _config(EXISTING, keycloak=keycloak_section))["locals"]["keycloak_values"]
    assert values["resources"] == {"limits": {"memory": "2Gi"}}
    assert values["replicas"] == 2
    # A host of the user's is their database server: its settings are the overrides' alone
    # (our generated password would not open it), and no PostgreSQL of ours is rendered.
    assert values["database"] == {"vendor": "postgres", "hostname": "db.example.com"}
    # Deep merge: the override adds an annotation and keeps the ones the stage sets.
    assert values["ingress"]["annotations"]["example.com/extra"] == "yes"
    assert values["ingress"]["annotations"]["traefik.ingress.kubernetes.io/router.tls"] == "true"
    assert values["ingress"]["enabled"] is True
    # Config values are escaped, so Terraform never evaluates a user's ${...}.
    assert values["extraLabels"] == {"team": "$${not-interpolated}"}


def test_outputs_name_the_credentials_secret_not_the_password() -> None:
    outputs = _doc(keycloak.STAGE, _config(EXISTING))["output"]
    assert set(outputs) == set(KeycloakOutputs.model_fields)
    assert outputs["admin_credentials_secret"]["value"] == "${kubernetes_secret.admin.metadata[0].name}"
    assert outputs["keycloak_url"]["value"] == "${var.base_url}/auth"
    assert not any("password" in json.dumps(o["value"]) for o in outputs.values())


def test_enabled_themes_say_plainly_they_are_not_rendered_yet() -> None:
    keycloak_section = {
        **EXISTING["security"]["keycloak"],
        "themes": {"enabled": True, "repository": "https://github.com/example/theme", "branch": "main"},
    }
    rendered = render_stage(
        keycloak.STAGE, _config(EXISTING, keycloak=keycloak_section), LOCK, "lockfiles/versions.yaml"
    )
    assert b"images.git_sync" in rendered.files[keycloak.THEMES_NOTE]
    assert keycloak.THEMES_NOTE not in render_stage(keycloak.STAGE, _config(EXISTING), LOCK, "x").files


def _upstream(certificate_type: str) -> Upstream:
    return Upstream(keycloak.NAME, _upstream_outputs(certificate_type))


def _upstream_outputs(certificate_type: str) -> dict[str, Any]:
    return {
        "02-infrastructure": InfrastructureOutputs(
            kubeconfig_path="/k/config",
            kube_context="kind-demo",
            cluster_name="demo",
            node_selectors={
                g: NodeSelector(key="kubernetes.io/os", value="linux") for g in ("general", "user", "worker")
            },
        ),
        "03-kubernetes-initialize": InitializeOutputs(namespace="dev"),
        "04-kubernetes-ingress": IngressOutputs(
            load_balancer_address="10.0.0.1", domain="demo.example.com", certificate_type=certificate_type
        ),
    }


@pytest.mark.parametrize(
    ("certificate", "base_url", "verify"),
    [
        ("self-signed", "https://demo.example.com", False),
        ("lets-encrypt", "https://demo.example.com", True),
        ("existing", "https://demo.example.com", True),
        ("disabled", "http://demo.example.com", True),
    ],
)
def test_inputs_follow_the_certificate(certificate: str, base_url: str, verify: bool) -> None:
    inputs = keycloak.connect(_upstream(certificate))
    assert (inputs.base_url, inputs.tls_verify, inputs.domain, inputs.namespace) == (
        base_url,
        verify,
        "demo.example.com",
        "dev",
    )
    assert inputs.general_node_selector == {"kubernetes.io/os": "linux"}


def test_inputs_from_mocked_infrastructure_schedule_anywhere() -> None:
    from stagegraph.stages.infrastructure import STAGE as INFRA

    assert INFRA.mock_outputs is not None
    outputs = {**_upstream_outputs("self-signed"), "02-infrastructure": INFRA.mock_outputs}
    mocked = Upstream(keycloak.NAME, outputs)
    assert keycloak.connect(mocked).general_node_selector == {}


# --- 06: realm, login, groups, clients --------------------------------------------------------------


def test_realm_carries_the_display_name() -> None:
    keycloak_section = {**EXISTING["security"]["keycloak"], "realm_display_name": "Data Lab ${x}"}
    realm = _doc(keycloak_configuration.STAGE, _config(EXISTING, keycloak=keycloak_section))["resource"][
        "keycloak_realm"
    ]["main"]
    assert realm["realm"] == "nebari"
    assert realm["display_name"] == "Data Lab $${x}"


@pytest.mark.parametrize("shared", [True, False])
def test_shared_users_group_toggles_the_users_group(shared: bool) -> None:
    doc = _doc(keycloak_configuration.STAGE, _config(EXISTING, shared_users_group=shared))
    groups = doc["resource"]["keycloak_group"]
    assert ("group_users" in groups) is shared
    assert {"group_superadmin", "group_admin", "group_developer", "group_analyst"} <= set(groups)
    defaults = doc["resource"]["keycloak_default_groups"]["default"]["group_ids"]
    expected = ["${keycloak_group.group_analyst.id}"] + (
        ["${keycloak_group.group_users.id}"] if shared else []
    )
    assert defaults == expected
    assert ("users" in doc["output"]["groups"]["value"]) is shared


def test_password_login_needs_no_identity_provider() -> None:
    doc = _doc(keycloak_configuration.STAGE, _config(EXISTING, authentication=AUTH["password"]))
    assert "keycloak_oidc_identity_provider" not in doc["resource"]


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ("GitHub", {"alias": "github", "provider_id": "github", "client_id": "gh-client"}),
        (
            "Auth0",
            {
                "alias": "auth0",
                "provider_id": "oidc",
                "client_id": "a0-client",
                "authorization_url": "https://acme.auth0.com/authorize",
                "token_url": "https://acme.auth0.com/oauth/token",
                "issuer": "https://acme.auth0.com/",
            },
        ),
        (
            "custom",
            {
                "alias": "okta",
                "provider_id": "oidc",
                "display_name": "Okta",
                "client_id": "okta-client",
                "token_url": "https://acme.okta.com/oauth2/v1/token",
                "user_info_url": "https://acme.okta.com/oauth2/v1/userinfo",
                "issuer": "https://acme.okta.com",
            },
        ),
    ],
)
def test_each_login_type_renders_its_identity_provider(auth: str, expected: dict[str, str]) -> None:
    doc = _doc(keycloak_configuration.STAGE, _config(EXISTING, authentication=AUTH[auth]))
    idp = doc["resource"]["keycloak_oidc_identity_provider"]["login"]
    assert {k: idp[k] for k in expected} == expected
    assert idp["realm"] == "${keycloak_realm.main.id}"
    assert idp["client_secret"] == "${var.identity_provider_client_secret}"
    sensitive = {s.variable: s.config_path for s in keycloak_configuration.STAGE.sensitive}
    assert sensitive["identity_provider_client_secret"] == "security.authentication.config.client_secret"


def test_each_service_gets_an_oauth_client_redirecting_under_the_domain() -> None:
    doc = _doc(keycloak_configuration.STAGE, _config(EXISTING))
    clients = doc["resource"]["keycloak_openid_client"]
    assert set(clients) == {"jupyterhub", "conda_store", "grafana", "argo", "forwardauth"}
    assert clients["jupyterhub"]["valid_redirect_uris"] == ["${var.base_url}/hub/oauth_callback"]
    assert clients["argo"]["client_id"] == "argo-server-sso"
    for client in clients.values():
        assert client["access_type"] == "CONFIDENTIAL"
        assert "client_secret" not in client
        assert all(uri.startswith("${var.base_url}/") for uri in client["valid_redirect_uris"])
    outputs = doc["output"]["clients"]["value"]
    assert outputs["conda_store"] == "${keycloak_openid_client.conda_store.client_id}"


def test_client_secrets_reach_the_cluster_as_kubernetes_secrets_never_as_outputs() -> None:
    doc = _doc(keycloak_configuration.STAGE, _config(EXISTING))
    secrets = doc["resource"]["kubernetes_secret"]
    hub = secrets["jupyterhub_client"]
    assert hub["metadata"] == [{"name": "keycloak-client-jupyterhub", "namespace": "${var.namespace}"}]
    assert hub["data"] == {
        "client_id": "${keycloak_openid_client.jupyterhub.client_id}",
        "client_secret": "${keycloak_openid_client.jupyterhub.client_secret}",
    }
    assert secrets["conda_store_client"]["metadata"][0]["name"] == "keycloak-client-conda-store"
    assert "client_secret" not in json.dumps(doc["output"])
    # Services match groups by name, and the hub reads profile grants from its own claim.
    mappers = doc["resource"]["keycloak_openid_group_membership_protocol_mapper"]
    assert all(mapper["full_path"] is False for mapper in mappers.values())
    profiles = doc["resource"]["keycloak_openid_user_attribute_protocol_mapper"]["jupyterhub_profiles"]
    assert profiles["claim_name"] == "jupyterlab_profiles"


def test_the_keycloak_provider_logs_in_with_the_outputs_of_05() -> None:
    doc = _doc(keycloak_configuration.STAGE, _config(EXISTING))
    assert doc["terraform"]["required_providers"]["keycloak"]["source"] == "keycloak/keycloak"
    provider = doc["provider"]["keycloak"]
    assert (provider["url"], provider["base_path"], provider["realm"]) == (
        "${var.base_url}",
        "${var.base_path}",
        "master",
    )
    outputs = KeycloakOutputs(
        keycloak_url="https://d.example.com/auth",
        internal_url="http://k.dev.svc:80/auth",
        admin_username="root",
        admin_credentials_secret="keycloak-admin-credentials",
        base_url="https://d.example.com",
        base_path="/auth",
        tls_verify=False,
    )
    upstream = {**_upstream_outputs("self-signed"), "05-kubernetes-keycloak": outputs}
    inputs = keycloak_configuration.connect(Upstream(keycloak_configuration.NAME, upstream))
    assert (inputs.base_url, inputs.base_path, inputs.tls_verify) == ("https://d.example.com", "/auth", False)
    assert (inputs.admin_username, inputs.namespace, inputs.kubeconfig_path) == ("root", "dev", "/k/config")


@pytest.mark.parametrize("stage", [keycloak.STAGE, keycloak_configuration.STAGE], ids=lambda s: s.name)
def test_sandbox_renders_use_only_terraform_data_and_no_provider(stage: Any) -> None:
    config = NebariConfig.model_validate(yaml.safe_load((ROOT / "nebari-config.yaml").read_text()))
    doc = _doc(stage, config)
    assert "provider" not in doc and "required_providers" not in doc["terraform"]
    assert set(doc["resource"]) == {"terraform_data"}
    assert "data" not in doc
    assert "keycloak" not in json.dumps(doc.get("terraform", {}))


# --- the check after apply ---------------------------------------------------------------------------


class _KeycloakStandIn(BaseHTTPRequestHandler):
    """Answers like Keycloak: the master realm's public JSON at /auth/realms/master."""

    status_for_realm = 200
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        if self.path == "/auth/realms/master":
            status, body = type(self).status_for_realm, {"realm": "master", "public_key": "MIIB..."}
        else:
            status, body = 404, {"error": "Unable to find matching target resource method"}
        send_json(self, status, body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def keycloak_stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    _KeycloakStandIn.status_for_realm = 200
    _KeycloakStandIn.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeycloakStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _check_context(base_url: str, lines: list[str]) -> CheckContext:
    outputs = KeycloakOutputs(
        keycloak_url=f"{base_url}/auth",
        internal_url="http://keycloak-keycloakx-http.dev.svc:80/auth",
        admin_username="root",
        admin_credentials_secret=keycloak.ADMIN_SECRET,
        base_url=base_url,
        base_path="/auth",
        tls_verify=True,
    )
    return CheckContext(
        stage=keycloak.NAME,
        provider="existing",
        upstream=Upstream(keycloak.NAME, {}),
        outputs=outputs,
        line=lines.append,
    )


def test_check_passes_when_keycloak_answers_the_master_realm(keycloak_stand_in: str) -> None:
    lines: list[str] = []
    assert keycloak.STAGE.check is not None
    keycloak.STAGE.check(_check_context(keycloak_stand_in, lines))
    assert _KeycloakStandIn.seen == ["/auth/realms/master"]
    assert lines == [f"Keycloak answers at {keycloak_stand_in}/auth/realms/master"]


def test_check_fails_in_one_line_on_a_404(keycloak_stand_in: str) -> None:
    _KeycloakStandIn.status_for_realm = 404
    with pytest.raises(KeycloakCheckError) as caught:
        keycloak.check(_check_context(keycloak_stand_in, []))
    message = str(caught.value)
    assert message.startswith(
        f"Keycloak answered HTTP 404 at {keycloak_stand_in}/auth/realms/master, expected 200"
    )
    assert "\n" not in message


def test_check_fails_in_one_line_when_nothing_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The port is closed again: connecting is refused.
    with pytest.raises(KeycloakCheckError) as caught:
        keycloak.check(_check_context(f"http://127.0.0.1:{port}", []))
    message = str(caught.value)
    assert message.startswith(f"Keycloak did not answer at http://127.0.0.1:{port}/auth/realms/master (")
    assert "refused" in message.lower()
    assert "\n" not in message


def test_check_refuses_a_url_that_is_not_http() -> None:
    with pytest.raises(KeycloakCheckError, match="is not http"):
        keycloak.probe("file:///etc/passwd", verify_tls=True)
