"""Roles that take effect: the services apply the roles and scopes of 06's Keycloak roles.

06 renders every role (Nebari's built-in ones and `security.roles`) as a client role with
`component` and `scopes` attributes, attached to groups; Keycloak puts the roles a user
holds, directly or through a group, in the `roles` claim of every token. Here the services
learn what those roles mean:

- JupyterHub (hub script ROLES_SCRIPT): roles of the `jupyterhub` component become
  JupyterHub roles with their scopes, assigned to their groups at start (as Nebari's
  `load_managed_roles`) and to the user at every login from the token's `roles` claim (as
  Nebari's `update_auth_model`), plus JupyterHub's own `admin` and `user` roles.
- conda-store (CONDA_STORE_ROLES): the built-in conda_store_* roles map to conda-store's
  admin/developer/viewer on `global` and the user's group namespaces, as in Nebari, and a
  `conda-store` role's scopes `<access>:conda-store!namespace=<name>` grant that access on
  that namespace (read -> viewer, write -> developer, admin or no access level -> admin).
- Dask Gateway: roles of the `dask-gateway` component reach JupyterHub as roles without
  scopes, which the gateway reads (svc_dask_access).
- Grafana and Argo map the roles claim in their own modules (svc_monitoring, svc_argo).

Nebari asks Keycloak's admin API for the role attributes at every login. Here the meaning
of a role comes from the config instead, rendered as data: a login needs no admin API call,
the hub needs no Keycloak service account for it, and `git diff stages/` shows a scope
change. A role created by hand in Keycloak's console therefore carries no scopes (its
name still reaches Grafana and Argo); the README says so.
"""

from __future__ import annotations

from typing import Any

from stagegraph.errors import RenderError
from stagegraph.schema.permissions import HUB_COMPONENTS
from stagegraph.stage import RenderContext
from stagegraph.stages.keycloak_configuration import role_specs
from stagegraph.stages.permissions import parse_scope
from stagegraph.tfjson import literal

#: RFD scope access level -> conda-store namespace role; no access level grants all.
CONDA_STORE_ACCESS = {"read": "viewer", "write": "developer", "admin": "admin", None: "admin"}


def hub_roles(ctx: RenderContext) -> dict[str, dict[str, Any]]:
    """JupyterHub roles by name: description, scopes and the groups they are attached to.

    Roles of the `dask-gateway` component become JupyterHub roles too, without scopes (theirs
    mean something to the gateway only): the gateway reads which a user holds (svc_dask_access).
    Their names are JupyterHub's to accept: `schema.permissions.Role` checks them at validate.
    """
    return {
        str(literal(spec.name)): {
            "description": literal(spec.description or spec.name),
            "scopes": literal(list(spec.scopes)) if spec.component == "jupyterhub" else [],
            "groups": literal(list(spec.groups)),
        }
        for spec in role_specs(ctx)
        if spec.component in HUB_COMPONENTS
    }


def conda_store_roles(ctx: RenderContext) -> dict[str, list[list[str]]]:
    """For each `conda-store` role of security.roles: [namespace, conda-store role] pairs."""
    out: dict[str, list[list[str]]] = {}
    for index, role in enumerate(ctx.config.security.roles):
        if role.component != "conda-store":
            continue
        grants: list[list[str]] = []
        for position, text in enumerate(role.scopes):
            scope = parse_scope(text)
            field = f"nebari-config.yaml: security.roles.{index}.scopes.{position}"
            if scope.resource != "conda-store" or scope.object != "namespace" or not scope.object_name:
                raise RenderError(
                    f"{field}: a conda-store scope reads <access>:conda-store!namespace=<name>, "
                    f"e.g. read:conda-store!namespace=pycon (got {text!r})"
                )
            if scope.access not in CONDA_STORE_ACCESS or scope.subresource is not None:
                allowed = ", ".join(a for a in CONDA_STORE_ACCESS if a)
                raise RenderError(
                    f"{field}: conda-store grants {allowed} (or all without an access level) on a "
                    f"namespace; use one of those (got {text!r})"
                )
            grants.append([scope.object_name, CONDA_STORE_ACCESS[scope.access]])
        out[str(literal(role.name))] = grants
    return out


ROLES_SCRIPT = """\
# stagegraph 07: roles that take effect (nebari-config.yaml `security.roles` and Nebari's
# built-in roles). custom.roles holds the JupyterHub roles: scopes and the Keycloak groups
# they are attached to. Groups come from the token's `groups` claim (manage_groups), the
# roles a user holds from its `roles` claim (manage_roles), as Nebari's authenticator does.
import z2jh
from oauthenticator.generic import GenericOAuthenticator

ROLES = z2jh.get_config("custom.roles", {}) or {}


def role_model(name):
    spec = ROLES[name]
    return {"name": name, "description": spec["description"], "scopes": list(spec["scopes"])}


class NebariOAuthenticator(GenericOAuthenticator):
    async def load_managed_roles(self):
        # At start: every role, with the groups it is attached to in Keycloak.
        return [{**role_model(name), "groups": list(ROLES[name]["groups"])} for name in sorted(ROLES)]

    async def update_auth_model(self, auth_model):
        auth_model = await super().update_auth_model(auth_model)
        claims = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        held = set(claims.get("roles") or [])
        roles = [role_model(name) for name in sorted(held & set(ROLES))]
        # manage_roles replaces a user's roles with this list: keep JupyterHub's own.
        if auth_model.get("admin"):
            roles.append({"name": "admin"})
        if await self.check_allowed(auth_model["name"], auth_model):
            roles.append({"name": "user"})
        auth_model["roles"] = roles
        return auth_model


c.JupyterHub.authenticator_class = NebariOAuthenticator
c.NebariOAuthenticator.manage_roles = True
"""

CONDA_STORE_ROLES = """\
# --- roles that take effect (security.roles, Nebari's built-in conda_store_* roles) ---
import requests
from conda_store_server import api
from conda_store_server._internal.server.dependencies import get_conda_store
from conda_store_server.server import schema as auth_schema
from conda_store_server.server.auth import GenericOAuthAuthentication

ROLE_ORDER = ["viewer", "developer", "admin"]
BUILTIN_ROLES = {"conda_store_admin": "admin", "conda_store_developer": "developer", "conda_store_viewer": "viewer"}


def role_bindings(username, groups, roles, default_namespace, scoped):
    \"\"\"conda-store role bindings of a user holding Keycloak `roles` and in `groups`.\"\"\"
    if "conda_store_superadmin" in roles:
        return {"*/*": {"admin"}}
    base = {BUILTIN_ROLES[r] for r in roles if r in BUILTIN_ROLES}
    bindings = {f"{default_namespace}/*": {"viewer"}, "global/*": set(base)}
    for group in groups:
        bindings[f"{group.rsplit('/', 1)[-1]}/*"] = set(base)
    granted = {}
    for role in sorted(roles):
        for namespace, level in scoped.get(role, []):
            if namespace not in granted or ROLE_ORDER.index(level) > ROLE_ORDER.index(granted[namespace]):
                granted[namespace] = level
    for namespace, level in granted.items():
        held = bindings.get(f"{namespace}/*", set())
        best = max([level, *held], key=ROLE_ORDER.index)
        bindings[f"{namespace}/*"] = {best}
    # A user's own namespace is theirs whatever a role says.
    bindings[f"{username}/*"] = {"admin"}
    return bindings


class NebariAuthentication(GenericOAuthAuthentication):
    async def authenticate(self, request):
        token = self._get_oauth_token(request)
        if token is None:
            return None
        response = requests.get(
            self.user_data_url, headers={"Authorization": f"Bearer {token}"}, verify=self.tls_verify
        )
        response.raise_for_status()
        user = response.json()
        username = user["preferred_username"]
        bindings = role_bindings(
            username,
            user.get("groups") or [],
            set(user.get("roles") or []),
            settings["default_namespace"],
            settings["roles"],
        )
        conda_store = await get_conda_store(request)
        with conda_store.session_factory() as db:
            for entity in bindings:
                namespace = entity.split("/")[0]
                if namespace != "*" and api.get_namespace(db, name=namespace) is None:
                    api.ensure_namespace(db, name=namespace)
        return auth_schema.AuthenticationToken(primary_namespace=username, role_bindings=bindings)


c.CondaStoreServer.authentication_class = NebariAuthentication
c.RBACAuthorizationBackend.role_mappings_version = 2
"""
