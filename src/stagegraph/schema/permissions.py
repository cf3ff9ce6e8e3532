"""Groups and roles of the Keycloak realm (`security.groups`, `security.roles`).

The model is the one of "RFD - Nebari Permissions Model": a role belongs to a component of
a service, carries permission scopes (`read:shared!shared=pycon`, see
`stagegraph.stages.permissions`) and is attached to groups. Keycloak keeps the component and
the scopes as role attributes, which the services read at login.

Nebari's own groups and roles (the ones every deployment has) are listed here too, so that
the config is checked against them: a role may only attach to a group that exists, and may
not reuse the name of a built-in role.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from stagegraph.schema.base import Section, field_problem, pattern_check, pattern_schema
from stagegraph.stages.permissions import SYNTAX, ScopeError, parse_scope

#: Groups every realm has; `users` joins them when `security.shared_users_group` is on.
DEFAULT_GROUPS = ("superadmin", "admin", "developer", "analyst")
SHARED_USERS_GROUP = "users"
#: Groups a new user joins (plus `users` when the shared users group is on), as in Nebari.
NEW_USER_GROUPS = ("analyst",)

#: Components of the RFD: JupyterHub's API, its profiles, the shared directories and Dask
#: (all served by the jupyterhub client), conda-store, Grafana and Argo.
Component = Literal[
    "jupyterhub", "jupyterhub-profiles", "shared-directory", "dask-gateway", "conda-store", "grafana", "argo"
]

# Group and role names become part of Terraform resource names, which allow letters, digits,
# '-' and '_'; Keycloak itself would take more, but such names are rare and a clear error
# beats an escaping scheme nobody can read in `git diff`.
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
_NAME_RULE = "should be letters, digits, - or _, starting with a letter or digit"
GroupName = Annotated[str, pattern_check(NAME_RE, _NAME_RULE), pattern_schema(NAME_RE)]
RoleName = Annotated[str, pattern_check(NAME_RE, _NAME_RULE), pattern_schema(NAME_RE)]

#: Components whose roles become JupyterHub roles (07's authenticator assigns them at login).
HUB_COMPONENTS = ("jupyterhub", "dask-gateway")
#: JupyterHub's rule for role names (jupyterhub/roles.py, `_role_name_pattern`, 5.x): the hub
#: refuses to start with a role named otherwise.
JUPYTERHUB_ROLE_NAME = re.compile(r"^[a-z][a-z0-9\-_~\.]{1,253}[a-z0-9]$")
#: Dask Gateway's JupyterHub service; 07 gives it a role of the same name (hub.loadRoles).
DASK_GATEWAY_SERVICE = "dask-gateway"
#: JupyterHub's default roles and the service roles of the chart values.
RESERVED_HUB_ROLES = ("admin", "user", "server", "token", "metrics", DASK_GATEWAY_SERVICE)
#: A dask-gateway scope's access level -> what the gateway grants; no access level grants all.
DASK_SCOPE_ACCESS: dict[str | None, str] = {"create": "create", "admin": "admin", None: "admin"}


class Role(Section):
    """A Keycloak client role with permission scopes, attached to groups."""

    name: RoleName = Field(description="Role name, unique across the realm's service clients.")
    component: Component = Field(
        description="Component the scopes apply to; picks the client the role lives in "
        "(jupyterhub, jupyterhub-profiles, shared-directory and dask-gateway: the jupyterhub client)."
    )
    scopes: list[str] = Field(
        min_length=1,
        description=f"Permission scopes, each {SYNTAX}, e.g. read:shared!shared=pycon or "
        "write:conda-store!namespace=pycon.",
    )
    groups: list[GroupName] = Field(
        default_factory=list,
        description="Groups the role is attached to: default groups (superadmin, admin, developer, "
        "analyst, users) or ones listed in security.groups.",
    )
    description: str = Field("", description="What the role allows, shown in Keycloak's admin console.")

    @model_validator(mode="after")
    def _scopes_follow_the_grammar(self) -> Role:
        for index, scope in enumerate(self.scopes):
            try:
                parse_scope(scope)
            except ScopeError as err:
                raise field_problem(
                    f"scopes.{index}", f"role {self.name!r}: {err.problem}; a scope reads {SYNTAX}", scope
                ) from None
        return self

    @model_validator(mode="after")
    def _hub_role_rules(self) -> Role:
        """What JupyterHub and Dask Gateway accept of the roles they are given (07)."""
        if self.component not in HUB_COMPONENTS:
            return self
        if not JUPYTERHUB_ROLE_NAME.match(self.name):
            raise field_problem(
                "name",
                f"a {self.component} role becomes a JupyterHub role, whose name is 3-255 characters of "
                "lower-case letters, digits and '-._~', starting with a letter and ending with a letter "
                "or digit",
                self.name,
            )
        if self.name in RESERVED_HUB_ROLES:
            # Same name, one role: it would replace JupyterHub's own or a service's scopes.
            raise field_problem(
                "name",
                f"{self.name!r} is a role JupyterHub already has ({', '.join(RESERVED_HUB_ROLES)}); "
                "pick another name",
                self.name,
            )
        if self.component == "dask-gateway":
            for index, text in enumerate(self.scopes):
                scope = parse_scope(text)
                if (
                    scope.resource != "dask-gateway"
                    or scope.access not in DASK_SCOPE_ACCESS
                    or scope.subresource is not None
                    or scope.object is not None
                ):
                    raise field_problem(
                        f"scopes.{index}",
                        "a dask-gateway scope is create:dask-gateway (own clusters) or "
                        "admin:dask-gateway (every user's clusters)",
                        text,
                    )
        return self


@dataclass(frozen=True)
class BuiltinRole:
    """A role every Nebari deployment has (the `keycloak-client` role mappings of Nebari)."""

    name: str
    component: str
    groups: tuple[str, ...]
    description: str
    scopes: tuple[str, ...] = ()


BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole("jupyterhub_admin", "jupyterhub", ("admin",), "JupyterHub administrator"),
    BuiltinRole("jupyterhub_developer", "jupyterhub", ("developer", "analyst"), "JupyterHub user"),
    BuiltinRole("dask_gateway_admin", "dask-gateway", ("admin",), "Dask Gateway administrator"),
    BuiltinRole("dask_gateway_developer", "dask-gateway", ("developer",), "Dask Gateway user"),
    BuiltinRole(
        "allow-app-sharing-role",
        "jupyterhub",
        (),
        "Allow app sharing for apps created via JupyterHub App Launcher (jhub-apps)",
        ("shares", "read:users:name", "read:groups:name"),
    ),
    BuiltinRole(
        "allow-read-access-to-services-role",
        "jupyterhub",
        ("analyst",),
        "Allow read access to services, such that they are visible on the home page e.g. conda-store",
        ("read:services",),
    ),
    BuiltinRole(
        "allow-group-directory-creation-role",
        "shared-directory",
        ("admin", "analyst", "developer"),
        "Grants a group the ability to manage the creation of its corresponding mounted directory.",
        ("write:shared-mount",),
    ),
    BuiltinRole("conda_store_superadmin", "conda-store", ("superadmin",), "conda-store superadmin"),
    BuiltinRole("conda_store_admin", "conda-store", ("admin",), "conda-store administrator"),
    BuiltinRole("conda_store_developer", "conda-store", ("developer", "analyst"), "conda-store user"),
    BuiltinRole("grafana_admin", "grafana", ("admin",), "Grafana Admin"),
    BuiltinRole("grafana_developer", "grafana", ("developer",), "Grafana Editor"),
    BuiltinRole("grafana_viewer", "grafana", ("analyst",), "Grafana Viewer"),
    BuiltinRole("argo-admin", "argo", ("admin",), "Argo Workflows administrator"),
    BuiltinRole("argo-developer", "argo", ("developer",), "Argo Workflows user"),
    BuiltinRole("argo-viewer", "argo", ("analyst",), "Argo Workflows read-only user"),
)


def realm_groups(extra: Sequence[str], shared_users_group: bool) -> list[str]:
    """Every group of the realm, defaults first, in a stable order."""
    shared = [SHARED_USERS_GROUP] if shared_users_group else []
    return [*DEFAULT_GROUPS, *shared, *extra]


def new_user_groups(shared_users_group: bool) -> list[str]:
    return [*NEW_USER_GROUPS, *([SHARED_USERS_GROUP] if shared_users_group else [])]


def check_groups_and_roles(groups: Sequence[str], roles: Sequence[Role], shared_users_group: bool) -> None:
    """Extra groups are new and distinct; roles have unique new names and known groups.

    Raises a `field_problem` at the offending key (paths below the `security` section).
    """
    defaults = realm_groups((), shared_users_group)
    seen_groups: dict[str, int] = {}
    for index, group in enumerate(groups):
        if group in defaults:
            raise field_problem(
                f"groups.{index}",
                f"{group!r} is a default group already; remove it from security.groups",
                group,
            )
        if group in seen_groups:
            raise field_problem(
                f"groups.{index}", f"{group!r} is listed twice (also groups.{seen_groups[group]})", group
            )
        seen_groups[group] = index
    known = realm_groups(groups, shared_users_group)
    builtin = {role.name for role in BUILTIN_ROLES}
    seen_roles: dict[str, int] = {}
    for index, role in enumerate(roles):
        if role.name in builtin:
            raise field_problem(
                f"roles.{index}.name",
                f"{role.name!r} is a built-in Nebari role; pick another name",
                role.name,
            )
        if role.name in seen_roles:
            raise field_problem(
                f"roles.{index}.name",
                f"role {role.name!r} is defined twice (also roles.{seen_roles[role.name]})",
                role.name,
            )
        seen_roles[role.name] = index
        for position, group in enumerate(role.groups):
            if group not in known:
                hint = " (security.shared_users_group is off)" if group == SHARED_USERS_GROUP else ""
                raise field_problem(
                    f"roles.{index}.groups.{position}",
                    f"role {role.name!r}: group {group!r} does not exist{hint}; add it to security.groups "
                    f"or use one of {', '.join(known)}",
                    group,
                )
