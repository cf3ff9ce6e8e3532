"""06-kubernetes-keycloak-configuration: realm, identity providers, groups, clients (stand-in)."""

from __future__ import annotations

from pydantic import Field

from stagegraph.stage import Stage, StageIO, Upstream
from stagegraph.stages.keycloak import KeycloakOutputs
from stagegraph.stages.placeholder import placeholder

NAME = "06-kubernetes-keycloak-configuration"


class KeycloakConfigurationInputs(StageIO):
    keycloak_url: str = Field(description="Public URL of Keycloak.")
    admin_username: str = Field(description="Root admin of Keycloak.")


class KeycloakConfigurationOutputs(StageIO):
    realm_id: str = Field(description="Realm the platform's users live in.")
    groups: list[str] = Field(description="Groups created in the realm.")
    clients: dict[str, str] = Field(description="OAuth client ids by service.")


def connect(up: Upstream) -> KeycloakConfigurationInputs:
    kc = up.get(KeycloakOutputs)
    return KeycloakConfigurationInputs(keycloak_url=kc.keycloak_url, admin_username=kc.admin_username)


SECTIONS = ("security.authentication", "security.shared_users_group", "security.keycloak.realm_display_name")


def _groups(shared: bool) -> list[str]:
    return ["admin", "analyst", "developer"] + (["users"] if shared else [])


render = placeholder(
    NAME,
    "The realm with its display name, identity providers for the configured authentication, "
    "the default groups and the OAuth clients the services use; roles carry scopes.",
    SECTIONS,
    lambda ctx: {
        "realm_id": "nebari",
        "groups": _groups(bool(ctx.config.security.shared_users_group)),
        "clients": {s: f"{s}-client" for s in ("argo", "conda_store", "grafana", "jupyterhub")},
    },
)

STAGE = Stage(
    name=NAME,
    description="Keycloak realm, identity providers, groups, roles with scopes and OAuth clients",
    render=render,
    depends_on=("05-kubernetes-keycloak",),
    config_sections=SECTIONS,
    pins=("terraform", "providers.keycloak"),
    inputs=KeycloakConfigurationInputs,
    connect=connect,
    outputs=KeycloakConfigurationOutputs,
    mock_outputs=KeycloakConfigurationOutputs(realm_id="nebari", groups=["admin"], clients={}),
    priority=60,
)
