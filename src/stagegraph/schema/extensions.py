"""Extensions installed by stage 08: extra Helm charts and Nebari-style web apps."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from stagegraph.schema.base import Section, field_problem

#: A Kubernetes object name (RFC 1123 label): it names the release, the Deployment, the
#: Service and, with '-' turned into '_', the Terraform resources.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: Path segments of a URL, each of unreserved characters; never '.' or '..'.
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")
#: What Kubernetes accepts as an environment variable name.
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def _k8s_name(value: str, limit: int) -> str:
    if not _DNS_LABEL.match(value) or len(value) > limit:
        raise ValueError(
            f"must be a Kubernetes name: lowercase letters, digits and '-', starting and ending with "
            f"a letter or digit, at most {limit} characters (such as 'my-app')"
        )
    return value


def _url_path(value: str) -> str:
    segments = value.strip("/").split("/")
    if not value.strip("/") or any(not _SEGMENT.match(s) or s in (".", "..") for s in segments):
        raise ValueError(
            "must be a URL path of letters, digits and '-._~' separated by '/', without '.' or '..' "
            "segments (such as 'my-app')"
        )
    return value


def unique_names(helm: Sequence[HelmExtension], tf: Sequence[TerraformExtension]) -> None:
    """Refuse two extensions that would get the same Kubernetes or Terraform name.

    Both kinds live in the platform's namespace, and `my-app` and `my_app` would both be
    Terraform resource `my_app`; names are checked as Kubernetes names first, so only the
    same name twice (in one list or across both) is left to catch here.
    """
    seen: dict[str, str] = {}
    lists: tuple[tuple[str, Sequence[HelmExtension | TerraformExtension]], ...] = (
        ("helm_extensions", helm),
        ("tf_extensions", tf),
    )
    for field, items in lists:
        for i, ext in enumerate(items):
            where = f"{field}.{i}.name"
            if ext.name in seen:
                raise field_problem(
                    where,
                    f"{ext.name!r} is already the name of {seen[ext.name]}; each extension needs its "
                    "own name (they share the namespace)",
                    ext.name,
                )
            seen[ext.name] = where


class HelmExtension(Section):
    """An extra Helm chart."""

    name: str = Field(min_length=1, description="Release name (a Kubernetes name, unique among extensions).")
    repository: str = Field(min_length=1, description="Helm repository URL.")
    chart: str = Field(min_length=1, description="Chart name in that repository.")
    version: str = Field(min_length=1, description="Chart version (quote it).")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Helm values of the release.")

    @field_validator("name")
    @classmethod
    def _release_name(cls, value: str) -> str:
        return _k8s_name(value, 53)  # Helm's limit for release names


class ExtensionEnv(Section):
    """An environment variable of an extension's container."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str = Field(description="Variable value.")

    @field_validator("name")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError("must be an environment variable name: letters, digits, '_', '-' and '.'")
        return value


class TerraformExtension(Section):
    """A web app served under the platform's domain, behind its login."""

    name: str = Field(
        min_length=1, description="Name of the app's Kubernetes objects (unique among extensions)."
    )
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

    @field_validator("name")
    @classmethod
    def _object_name(cls, value: str) -> str:
        # 63 less the '-forwardauth' suffix of its Middleware.
        return _k8s_name(value, 51)

    @field_validator("urlslug", "logout")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else _url_path(value)
