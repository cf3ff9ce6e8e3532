"""Roles that take effect (issue 17 item 5, the permissions RFD in seeds/003).

A user in `developer` logs in: which roles does Keycloak put in the token, and what does
each service make of them? The roles come from 06's sandbox render (the roles attached to
the developer group, by the ids the sandbox gives them); then each service reads 07's
render the way it runs it:

- JupyterHub: the rendered hub.extraConfig scripts are executed in order against a stub
  `c` (as z2jh's jupyterhub_config.py execs them), with a fake `z2jh` serving the rendered
  chart values and a fake GenericOAuthenticator standing in for oauthenticator's base
  class (the base returns the auth model unchanged and allows members of allowed_groups);
- conda-store: the rendered conda_store_config.py runs against a stub `c` with fake
  conda_store_server modules, and its `role_bindings` gives the user's bindings;
- Grafana: the rendered role_attribute_path is evaluated with JMESPath (Grafana's language);
- Argo: the service accounts' rbac-rule annotations are evaluated on the roles claim
  (customGroupClaimName) with their precedence, as Argo's SSO RBAC picks one.

The RFD's table for developer: jupyterhub_developer, conda_store_developer,
grafana_developer (Editor), dask_gateway_developer, argo-developer.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jmespath
import pytest
import yaml
from scriptfakes import Config, conda_store_config, fake_modules, module, z2jh

from stagegraph.errors import RenderError
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stages import keycloak_configuration, services

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
SANDBOX = ROOT / "nebari-config.yaml"


def _config(edit: Any = None) -> NebariConfig:
    data = yaml.safe_load(SANDBOX.read_text())
    data.setdefault("monitoring", {})["enabled"] = True
    data.setdefault("argo_workflows", {})["enabled"] = True
    if edit is not None:
        edit(data)
    return NebariConfig.model_validate(data)


def _doc(stage: Any, config: NebariConfig) -> dict[str, Any]:
    files = render_stage(stage, config, LOCK, "lockfiles/versions.yaml").files
    doc: dict[str, Any] = json.loads(files["main.tf.json"])
    return doc


def token_roles(config: NebariConfig, groups: list[str]) -> set[str]:
    """Client roles Keycloak puts in the `roles` claim of a member of `groups` (06's sandbox render)."""
    data = _doc(keycloak_configuration.STAGE, config)["resource"]["terraform_data"]
    by_id = {}
    for key, body in data.items():
        if key.startswith("keycloak_role__") and "client_id" in body["input"]:
            client = body["input"]["client_id"].removeprefix("sandbox-client-")
            by_id[f"sandbox-role-{client}-{body['input']['name']}"] = body["input"]["name"]
    held: set[str] = set()
    for group in groups:
        mapping = data.get(f"keycloak_group_roles__group_{group}")
        if mapping is not None:
            held |= {by_id[i] for i in mapping["input"]["role_ids"] if i in by_id}
    return held


class _FakeGenericOAuthenticator:
    """Stand-in for oauthenticator's GenericOAuthenticator: what the subclass relies on."""

    user_auth_state_key = "oauth_user"

    def __init__(self, allowed_groups: list[str]) -> None:
        self.allowed_groups = set(allowed_groups)

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        return auth_model

    async def check_allowed(self, username: str, auth_model: dict[str, Any]) -> bool:
        groups = set(auth_model["auth_state"]["oauth_user"].get("groups") or [])
        return bool(groups & self.allowed_groups)


def hub_login(values: dict[str, Any], username: str, groups: list[str], roles: set[str]) -> dict[str, Any]:
    """Run every hub extraConfig script in z2jh's order, then log a user in."""

    c = Config()
    fakes = {
        "z2jh": z2jh(values),
        "oauthenticator": module("oauthenticator"),
        "oauthenticator.generic": module(
            "oauthenticator.generic", GenericOAuthenticator=_FakeGenericOAuthenticator
        ),
    }
    with fake_modules(**fakes):
        for key, script in sorted(values["hub"]["extraConfig"].items()):
            exec(compile(script.replace("$${", "${"), key, "exec"), {"c": c})
    authenticator_class = c.JupyterHub.authenticator_class
    assert c.NebariOAuthenticator.manage_roles is True
    auth = authenticator_class(allowed_groups=["admin", "developer", "analyst"])
    model = {
        "name": username,
        "admin": bool(set(groups) & set(values["hub"]["config"]["GenericOAuthenticator"]["admin_groups"])),
        "auth_state": {
            "oauth_user": {"preferred_username": username, "groups": groups, "roles": sorted(roles)}
        },
    }
    result: dict[str, Any] = asyncio.run(auth.update_auth_model(model))
    result["managed_roles"] = asyncio.run(auth.load_managed_roles())
    return result


def conda_store_bindings(
    doc: dict[str, Any], username: str, groups: list[str], roles: set[str]
) -> dict[str, Any]:
    """Run the rendered conda-store config and ask its role_bindings about a user."""
    data = _resource(doc, "kubernetes_config_map", "conda_store_config")["data"]
    settings = _resolve_settings(doc)

    class _Base:
        pass

    # The pod takes its secrets (06's client secret, its databases' passwords) from
    # Kubernetes secrets; any value does here.
    pod = doc["locals"]["conda_store_server_manifest"]["spec"]["template"]["spec"]
    env = {e["name"]: "unused" for e in pod["containers"][0]["env"]}
    c, namespace = conda_store_config(data["conda_store_config.py"], settings, env, auth_base=_Base)
    assert c.CondaStoreServer.authentication_class is namespace["NebariAuthentication"]
    bindings: dict[str, Any] = namespace["role_bindings"](
        username, groups, roles, settings["default_namespace"], settings["roles"]
    )
    return {k: sorted(v) for k, v in bindings.items()}


def _resource(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """A resource's arguments, in the sandbox render (terraform_data input) or the real one."""
    sandboxed = doc["resource"].get("terraform_data", {}).get(f"{kind}__{name}")
    body: dict[str, Any] = sandboxed["input"] if sandboxed is not None else doc["resource"][kind][name]
    return body


def _resolve_settings(doc: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = doc["locals"]["conda_store_settings"]
    return settings


def grafana_role(doc: dict[str, Any], roles: set[str]) -> str:
    oauth = doc["locals"]["kube_prometheus_stack_values"]["grafana"]["grafana.ini"]["auth.generic_oauth"]
    role: str = jmespath.search(oauth["role_attribute_path"], {"roles": sorted(roles)})
    return role


def argo_account(doc: dict[str, Any], roles: set[str]) -> str | None:
    """The service account Argo's SSO RBAC picks: highest precedence whose rule matches."""
    matches = []
    for key, body in doc["locals"].items():
        if not (key.startswith("argo_") and key.endswith("_service_account_manifest")):
            continue
        meta = body["metadata"]
        rule = meta["annotations"]["workflows.argoproj.io/rbac-rule"]
        # Argo's rules are expr expressions; `'x' in groups` reads the same in Python.
        if eval(rule, {"__builtins__": {}}, {"groups": sorted(roles)}):
            matches.append(
                (int(meta["annotations"]["workflows.argoproj.io/rbac-rule-precedence"]), meta["name"])
            )
    return max(matches)[1] if matches else None


def test_a_developer_gets_exactly_the_rfd_table() -> None:
    config = _config()
    roles = token_roles(config, ["developer"])
    assert roles == {
        "jupyterhub_developer",
        "dask_gateway_developer",
        "allow-group-directory-creation-role",
        "conda_store_developer",
        "grafana_developer",
        "argo-developer",
    }
    doc = _doc(services.STAGE, config)
    hub = hub_login(doc["locals"]["jupyterhub_values"], "dev1", ["developer"], roles)
    # JupyterHub: the jupyterhub-component role plus JupyterHub's `user`; no admin, no sharing.
    # The Dask role rides along without scopes, for the gateway to read (test_dask_access).
    assert hub["roles"] == [
        {"name": "dask_gateway_developer", "description": "Dask Gateway user", "scopes": []},
        {"name": "jupyterhub_developer", "description": "JupyterHub user", "scopes": []},
        {"name": "user"},
    ]
    assert conda_store_bindings(doc, "dev1", ["developer"], roles) == {
        "dev1/*": ["admin"],
        "nebari-git/*": ["viewer"],
        "global/*": ["developer"],
        "developer/*": ["developer"],
    }
    assert grafana_role(doc, roles) == "Editor"
    assert argo_account(doc, roles) == "argo-developer"


def test_admin_and_analyst_differ_where_the_table_says() -> None:
    config = _config()
    doc = _doc(services.STAGE, config)
    values = doc["locals"]["jupyterhub_values"]
    admin = token_roles(config, ["admin"])
    names = [r["name"] for r in hub_login(values, "boss", ["admin"], admin)["roles"]]
    assert names == ["dask_gateway_admin", "jupyterhub_admin", "admin", "user"]
    assert grafana_role(doc, admin) == "Admin"
    assert argo_account(doc, admin) == "argo-admin"
    analyst = token_roles(config, ["analyst"])
    hub = hub_login(values, "ana", ["analyst"], analyst)
    assert hub["roles"][0] == {
        "name": "allow-read-access-to-services-role",
        "description": "Allow read access to services, such that they are visible on the home page e.g. conda-store",
        "scopes": ["read:services"],
    }
    assert grafana_role(doc, analyst) == "Viewer"
    assert argo_account(doc, analyst) == "argo-viewer"
    # Nobody's roles: JupyterHub refuses the login (no `user` role), conda-store grants nothing shared.
    assert hub_login(values, "stranger", [], set())["roles"] == []


def _custom_roles(data: dict[str, Any]) -> None:
    data.setdefault("security", {})["groups"] = ["pycon"]
    data["security"]["roles"] = [
        {
            "name": "pycon-sharing",
            "component": "jupyterhub",
            "scopes": ["shares!user", "read:users:name", "read:groups:name"],
            "groups": ["pycon"],
        },
        {
            "name": "pycon-conda-write",
            "component": "conda-store",
            "scopes": ["write:conda-store!namespace=pycon", "read:conda-store!namespace=scipy"],
            "groups": ["pycon"],
        },
    ]


def test_security_roles_take_effect_in_jupyterhub_and_conda_store() -> None:
    config = _config(_custom_roles)
    roles = token_roles(config, ["developer", "pycon"])
    assert {"pycon-sharing", "pycon-conda-write"} <= roles
    doc = _doc(services.STAGE, config)
    hub = hub_login(doc["locals"]["jupyterhub_values"], "dev1", ["developer", "pycon"], roles)
    assert {
        "name": "pycon-sharing",
        "description": "pycon-sharing",
        "scopes": ["shares!user", "read:users:name", "read:groups:name"],
    } in hub["roles"]
    # At start the hub attaches the role to the Keycloak group, as Nebari's load_managed_roles.
    managed = {r["name"]: r for r in hub["managed_roles"]}
    assert managed["pycon-sharing"]["groups"] == ["pycon"]
    bindings = conda_store_bindings(doc, "dev1", ["developer", "pycon"], roles)
    assert bindings["pycon/*"] == ["developer"]
    assert bindings["scipy/*"] == ["viewer"]
    # Without the role, the same groups give scipy nothing.
    assert "scipy/*" not in conda_store_bindings(doc, "dev1", ["developer"], roles - {"pycon-conda-write"})


def test_conda_store_superadmin_gets_everything() -> None:
    config = _config()
    doc = _doc(services.STAGE, config)
    assert conda_store_bindings(doc, "root", ["superadmin"], token_roles(config, ["superadmin"])) == {
        "*/*": ["admin"]
    }


def test_a_conda_store_scope_without_a_namespace_is_a_one_line_error() -> None:
    def edit(data: dict[str, Any]) -> None:
        data.setdefault("security", {})["roles"] = [
            {
                "name": "bad",
                "component": "conda-store",
                "scopes": ["read:conda-store"],
                "groups": ["developer"],
            }
        ]

    with pytest.raises(RenderError) as err:
        _doc(services.STAGE, _config(edit))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("nebari-config.yaml: security.roles.0.scopes.0:")
    assert "namespace=" in message
