"""Extensions installed by stage 08: extra Helm charts and Nebari-style web apps."""

from __future__ import annotations

from typing import Any

from pydantic import Field

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
    oauth2client: bool = Field(False, description="Whether to create a Keycloak OAuth client for it.")
    keycloakadmin: bool = Field(False, description="Whether to give it Keycloak admin credentials.")
    jwt: bool = Field(False, description="Whether to pass it a JWT of the logged-in user.")
    nebariconfigyaml: bool = Field(
        False, description="Whether to mount the platform config (secrets masked) into it."
    )
    logout: str | None = Field(None, description="Path of its logout endpoint.")
    envs: list[ExtensionEnv] | None = Field(None, description="Environment variables of its container.")
