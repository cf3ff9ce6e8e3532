"""Sections of the Keycloak stages: the root account, themes, and how users log in."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, model_validator

from stagegraph.schema.base import TAG_MARK, Section, field_problem, tag
from stagegraph.schema.permissions import GroupName, Role, check_groups_and_roles
from stagegraph.schema.secret import SecretValue

AUTHENTICATION_TYPES = ("password", "GitHub", "Auth0", "custom")
AUTHENTICATION_TYPE_ERROR = "authentication_type"


class PasswordAuthentication(Section):
    """Users log in with a Keycloak username and password."""

    type: Literal["password"] = Field("password", description="How users log in.")


class GitHubConfig(Section):
    """A GitHub OAuth app."""

    client_id: str = Field(min_length=1, description="Client id of the GitHub OAuth app.")
    client_secret: SecretValue = Field(description="Client secret of the GitHub OAuth app.")


class GitHubAuthentication(Section):
    """Users log in with GitHub, through Keycloak."""

    type: Literal["GitHub"] = Field(description="How users log in.")
    config: GitHubConfig = Field(description="The GitHub OAuth app Keycloak uses.")


class Auth0Config(Section):
    """An Auth0 application."""

    client_id: str = Field(min_length=1, description="Client id of the Auth0 application.")
    client_secret: SecretValue = Field(description="Client secret of the Auth0 application.")
    auth0_subdomain: str = Field(
        min_length=1, description="Auth0 tenant subdomain, without .auth0.com (e.g. mycompany)."
    )


class Auth0Authentication(Section):
    """Users log in with Auth0, through Keycloak."""

    type: Literal["Auth0"] = Field(description="How users log in.")
    config: Auth0Config = Field(description="The Auth0 application Keycloak uses.")


class CustomConfig(Section):
    """Any OpenID Connect identity provider (Okta, Azure AD, Google, a second Keycloak...)."""

    provider_id: str = Field(
        "oidc", pattern=r"^[a-z0-9][a-z0-9-]*$", description="Alias of the identity provider inside Keycloak."
    )
    display_name: str = Field("Single sign-on", description="Login button label.")
    client_id: str = Field(min_length=1, description="Client id registered with the identity provider.")
    client_secret: SecretValue = Field(description="Client secret registered with the identity provider.")
    authorization_url: str = Field(pattern=r"^https?://", description="OIDC authorization endpoint.")
    token_url: str = Field(pattern=r"^https?://", description="OIDC token endpoint.")
    user_info_url: str | None = Field(None, description="OIDC userinfo endpoint, if the provider has one.")
    issuer: str | None = Field(None, description="Issuer to check in ID tokens.")
    default_scope: str = Field("openid profile email", description="Scopes requested at login.")


class CustomAuthentication(Section):
    """Users log in with an OpenID Connect provider of your choice, through Keycloak."""

    type: Literal["custom"] = Field(description="How users log in.")
    config: CustomConfig = Field(description="The OpenID Connect provider Keycloak uses.")


def _authentication_type(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return TAG_MARK + kind if kind in AUTHENTICATION_TYPES else None


Authentication = Annotated[
    Annotated[PasswordAuthentication, tag("password")]
    | Annotated[GitHubAuthentication, tag("GitHub")]
    | Annotated[Auth0Authentication, tag("Auth0")]
    | Annotated[CustomAuthentication, tag("custom")],
    Discriminator(
        _authentication_type,
        custom_error_type=AUTHENTICATION_TYPE_ERROR,
        custom_error_message="type should be one of password, GitHub, Auth0, custom",
    ),
]


class KeycloakThemes(Section):
    """Custom Keycloak login themes from a git repository."""

    enabled: bool = Field(False, description="Whether to install themes from the repository.")
    repository: str | None = Field("", description="Git URL of the theme repository.")
    branch: str | None = Field("main", description="Branch of the theme repository.")

    @model_validator(mode="after")
    def _source_when_enabled(self) -> KeycloakThemes:
        if self.enabled:
            for name in ("repository", "branch"):
                if not getattr(self, name):
                    raise field_problem(name, "required when enabled is true", getattr(self, name))
        return self


class Keycloak(Section):
    """The Keycloak server."""

    initial_root_password: SecretValue | None = Field(
        None,
        description="Password of Keycloak's root account, set at the first deploy (`doit init` "
        "writes a random one); required to deploy Keycloak.",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Helm values merged into the Keycloak chart."
    )
    realm_display_name: str = Field("Nebari", description="Realm name shown on the login page.")
    themes: KeycloakThemes = Field(
        default_factory=dict, validate_default=True, description="Custom login themes."
    )


class Security(Section):
    """Authentication and the Keycloak server."""

    authentication: Authentication = Field(
        default_factory=lambda: {"type": "password"},
        validate_default=True,
        description="How users log in: password, GitHub, Auth0 or custom.",
    )
    shared_users_group: bool = Field(
        True, description="Whether every user joins a `users` group with a shared directory."
    )
    keycloak: Keycloak = Field(
        default_factory=dict, validate_default=True, description="The Keycloak server."
    )
    groups: list[GroupName] = Field(
        default_factory=list,
        description="Extra Keycloak groups, besides the default superadmin, admin, developer, analyst "
        "(and users with shared_users_group).",
    )
    roles: list[Role] = Field(
        default_factory=list,
        description="Roles with permission scopes (Nebari's permissions model), attached to groups.",
    )

    @model_validator(mode="after")
    def _roles_attach_to_known_groups(self) -> Security:
        check_groups_and_roles(self.groups, self.roles, self.shared_users_group)
        return self
