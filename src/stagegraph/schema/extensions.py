"""Extensions installed by stage 08: extra Helm charts and Nebari-style web apps."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from stagegraph.schema.base import Section


class HelmExtension(Section):
    """An extra Helm chart."""

    name: str = Field(min_length=1, description="Release name.")
    repository: str = Field(min_length=1, description="Helm repository URL.")
    chart: str = Field(min_length=1, description="Chart name in that repository.")
    version: str = Field(min_length=1, description="Chart version (quote it).")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Helm values of the release.")


class ExtensionEnv(Section):
    """An environment variable of an extension's container."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str = Field(description="Variable value.")


class TerraformExtension(Section):
    """A web app served under the platform's domain, behind its login."""

    name: str = Field(min_length=1, description="Name of the app's Kubernetes objects.")
    image: str = Field(min_length=1, description="Container image (name:tag).")
    urlslug: str = Field(
        min_length=1, description="Path the app is served under (https://<domain>/<urlslug>)."
    )
    private: bool = Field(False, description="Whether only logged-in users may reach it.")
    # Nebari's switches that stagegraph does not implement yet: accepted as false (Nebari
    # writes them so), refused as true rather than silently ignored.
    oauth2client: bool = Field(
        False, description="Nebari: create a Keycloak OAuth client for it. Not supported yet: must be false."
    )
    keycloakadmin: bool = Field(
        False, description="Nebari: give it Keycloak admin credentials. Not supported yet: must be false."
    )
    jwt: bool = Field(False, description="Nebari: pass it a JWT secret. Not supported yet: must be false.")
    nebariconfigyaml: bool = Field(
        False, description="Nebari: mount the platform config into it. Not supported yet: must be false."
    )
    logout: str | None = Field(None, description="Path of its logout endpoint.")
    envs: list[ExtensionEnv] | None = Field(None, description="Environment variables of its container.")

    @field_validator("oauth2client", "keycloakadmin", "jwt", "nebariconfigyaml")
    @classmethod
    def _not_yet(cls, value: bool, info: ValidationInfo) -> bool:
        if value:
            raise ValueError(
                "true is not supported yet (stagegraph would ignore it); set it to "
                "false, and use private: true to put the platform's Keycloak login in front of the app"
            )
        return value
