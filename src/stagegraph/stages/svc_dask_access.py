"""Who may use Dask Gateway: the `dask-gateway` roles, applied by the gateway itself.

Nebari's gateway asks JupyterHub for each user's Keycloak roles and lets in only holders of
`dask_gateway_developer` (their own clusters) or `dask_gateway_admin`. Here the chain is:

1. 06 renders the roles as client roles of the jupyterhub client, so they reach the
   `roles` claim of a user's token.
2. The hub's authenticator (svc_roles) turns the roles of the `dask-gateway` component
   into JupyterHub roles without scopes, assigned to the user at every login.
3. The gateway's JupyterHub service holds one scope, `read:roles:users` (hub_service_role),
   so the token check it already makes (`/authorizations/token/<token>`) returns the user's
   roles beside the name and groups. Nebari instead gives the service JupyterHub's admin
   role and reads `auth_state`, which holds every user's Keycloak tokens; that is not
   needed to read role names.
4. ACCESS_SCRIPT (the gateway's `extraConfig`) refuses a user with none of the roles
   (403, the one line says which roles), and marks holders of an admin-level role as
   admins. dask-gateway-server 2024.1 records `admin` but never reads it, so the script
   also makes it mean what Nebari intends: an admin lists, reaches and stops every user's
   clusters; everyone else only their own.

What a role grants comes from the config, rendered as data: the built-in roles by name
(as in Nebari) and a `security.roles` entry of component `dask-gateway` by its scopes,
`create:dask-gateway` (start and use one's own clusters) or `admin:dask-gateway` /
`dask-gateway` (every user's clusters).
"""

from __future__ import annotations

from typing import Any

from stagegraph.schema.permissions import DASK_GATEWAY_SERVICE, DASK_SCOPE_ACCESS
from stagegraph.stage import RenderContext
from stagegraph.stages.permissions import parse_scope
from stagegraph.tfjson import literal

#: The JupyterHub service the chart's `hub.services` declares for the gateway.
SERVICE = DASK_GATEWAY_SERVICE
#: Access levels the gateway knows; `admin` includes `create`.
CREATE, ADMIN = "create", "admin"
BUILTIN_ACCESS = {"dask_gateway_developer": CREATE, "dask_gateway_admin": ADMIN}
#: RFD scope access level -> gateway access; no access level grants everything.
SCOPE_ACCESS = DASK_SCOPE_ACCESS


def hub_service_role() -> dict[str, Any]:
    """The JupyterHub role of the gateway's service (chart value `hub.loadRoles`).

    With it the token check returns the user's `roles`; name and groups come with any token
    check (JupyterHub's identify scopes).
    """
    return {
        "description": "Dask Gateway reads the roles of the users whose tokens it checks",
        "scopes": ["read:roles:users"],
        "services": [SERVICE],
    }


def dask_roles(ctx: RenderContext) -> dict[str, str]:
    """Role name -> the access it grants in the gateway (`create` or `admin`).

    The scopes are the gateway's to understand: `schema.permissions.Role` refuses others.
    """
    out = dict(BUILTIN_ACCESS)
    for role in ctx.config.security.roles:
        if role.component == "dask-gateway":
            levels = {SCOPE_ACCESS[parse_scope(text).access] for text in role.scopes}
            out[str(literal(role.name))] = ADMIN if ADMIN in levels else CREATE
    return out


ACCESS_SCRIPT = """\
# stagegraph 07: who may use Dask Gateway (Nebari's dask_gateway_* roles and the
# `dask-gateway` roles of nebari-config.yaml `security.roles`). SETTINGS["roles"] maps a
# role name to `create` (own clusters) or `admin` (every user's clusters); JupyterHub
# returns the roles a user holds with the token check (its service role read:roles:users).
import contextvars
from urllib.parse import quote

from aiohttp import web
from dask_gateway_server.auth import JupyterHubAuthenticator, unauthorized
from dask_gateway_server.models import User
from traitlets.utils.importstring import import_item

ROLE_ACCESS = SETTINGS["roles"]
# The user of the request being handled, for the backend (which is only given a name).
REQUEST_USER = contextvars.ContextVar("stagegraph_dask_request_user", default=None)


class RoleUser(User):
    def has_permissions(self, cluster):
        # dask-gateway-server checks only the owner's name: an admin reaches every cluster.
        return self.admin or super().has_permissions(cluster)


class RoleAuthenticator(JupyterHubAuthenticator):
    async def authenticate(self, request):
        token = self.get_token(request)
        if token is None:
            raise unauthorized("jupyterhub")
        url = "%s/authorizations/token/%s" % (self.jupyterhub_api_url, quote(token, safe=""))
        headers = {"Authorization": "token %s" % self.jupyterhub_api_token}
        async with self.session.get(url, headers=headers, ssl=self.ssl_context) as resp:
            if resp.status == 404:
                raise unauthorized("jupyterhub")
            if resp.status >= 500:
                raise web.HTTPBadGateway(reason="JupyterHub failed to check the token")
            if resp.status >= 400:
                raise web.HTTPInternalServerError(reason="JupyterHub refused the gateway's token check")
            model = await resp.json()
        held = {ROLE_ACCESS[role] for role in model.get("roles") or [] if role in ROLE_ACCESS}
        if not held:
            raise web.HTTPForbidden(
                reason="%s holds no Dask Gateway role (%s); ask an admin for one"
                % (model.get("name"), ", ".join(sorted(ROLE_ACCESS)))
            )
        return RoleUser(model["name"], groups=model.get("groups") or [], admin="admin" in held)

    async def authenticate_and_handle(self, request, handler):
        async def handle(request):
            mark = REQUEST_USER.set(request["user"])
            try:
                return await handler(request)
            finally:
                REQUEST_USER.reset(mark)

        return await super().authenticate_and_handle(request, handle)


_backend = c.DaskGateway.backend_class
if isinstance(_backend, str):
    _backend = import_item(_backend)
if not isinstance(_backend, type):
    raise ValueError("stagegraph: c.DaskGateway.backend_class must be set before the role check")


class RoleBackend(_backend):
    async def list_clusters(self, username=None, statuses=None):
        user = REQUEST_USER.get()
        if user is not None and user.admin and username == user.name:
            username = None  # an admin lists every user's clusters
        return await super().list_clusters(username=username, statuses=statuses)


c.DaskGateway.authenticator_class = RoleAuthenticator
c.DaskGateway.backend_class = RoleBackend
"""
