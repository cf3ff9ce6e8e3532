"""Write a new, explicit `nebari-config.yaml` (Nebari's "more explicit config" proposal).

The file lists every setting, grouped under a banner naming the stage that reads it, each
preceded by its description. Settings left at their default are commented out, so the
lines that are not comments are exactly the choices made: uncommenting a block (removing
one leading `# ` per line) yields valid YAML with its descriptions still as comments.
Only the chosen provider's section is shown.

OAuth client secrets are written as references to a SOPS-encrypted file, never as
placeholder plaintext; the Keycloak root password, when given, is written in the file
(which `write_new_config` creates with mode 0600) and never printed.
"""

from __future__ import annotations

import hashlib
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from stagegraph.errors import ConfigError
from stagegraph.schema.base import TAG_MARK
from stagegraph.schema.config import NEBARI_VERSION, PROVIDER_SECTIONS, NebariConfig
from stagegraph.schema.introspect import strip_annotation, union_member
from stagegraph.schema.problems import format_problems
from stagegraph.schema.security import AUTHENTICATION_TYPES

MAIN = "Main"
#: How errors in the choices name the file they would have produced.
_NAME = "nebari-config.yaml"
AUTH_SECRETS_FILE = "secrets/authentication.enc.yaml"
_WIDTH = 90
_BANNER = "#####################"

#: Cloud settings `doit init` writes; the Kubernetes version is left to the lockfile.
_CLOUD_DEFAULTS: dict[str, dict[str, str]] = {
    "aws": {"region": "us-east-1"},
    "gcp": {"region": "us-central1"},
    "azure": {"region": "Central US"},
}


class ConfigWriteError(ConfigError):
    """A new config could not be written (it exists already, or the folder is not writable)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(str(path), [f"{path}: {reason}"])


def render_init_config(
    provider: str,
    project_name: str,
    domain: str | None,
    auth_type: str,
    section_owner: Mapping[str, str],
    root_password: str | None = None,
    root_password_ref: Mapping[str, str] | None = None,
    gcp_project: str | None = None,
) -> str:
    """The text of a new config for these choices (validated before it is returned).

    `section_owner` maps a top-level key to the stage that reads it (e.g. `security` ->
    `05-kubernetes-keycloak`); keys without an owner go under "Main". `root_password_ref`
    (`{sops: ..., key: ...}`, from `stagegraph.sops.init`) is written instead of a
    plaintext `root_password`.
    """
    password = dict(root_password_ref) if root_password_ref is not None else root_password
    chosen = _choices(provider, project_name, domain, auth_type, password)
    if provider == "gcp":
        # No default can be right: a made-up project id would validate and fail at deploy.
        if not gcp_project:
            raise ConfigError(
                _NAME,
                [
                    f"{_NAME}: google_cloud_platform.project: required with --provider gcp; pass "
                    "--gcp-project <id of your GCP project> (e.g. my-project-123)"
                ],
            )
        chosen["google_cloud_platform"]["project"] = gcp_project
    try:
        config = NebariConfig.model_validate(chosen)
    except ValidationError as err:
        raise ConfigError(_NAME, format_problems(err, _NAME, NebariConfig)) from None
    defaults = config.model_dump(mode="json")
    hidden = {key for key in PROVIDER_SECTIONS.values() if key != PROVIDER_SECTIONS[config.provider]}

    groups: dict[str, list[str]] = {MAIN: []}
    for stage in section_owner.values():
        groups.setdefault(stage, [])
    for name, field in NebariConfig.model_fields.items():
        key = field.alias or name
        if key not in hidden:
            groups.setdefault(section_owner.get(key, MAIN), []).append(key)

    lines = [
        "# yaml-language-server: $schema=schema/nebari-config.schema.json",
        "#",
        "# Written by `doit init`. Settings left at their default are commented out: the lines",
        "# that are not comments are the choices made for this deployment. Each banner names",
        "# the stage that reads the settings under it.",
    ]
    for stage, keys in groups.items():
        if not keys:
            continue
        lines += ["", f"{_BANNER} {stage} {_BANNER}"]
        for key in keys:
            lines.append("")
            lines += _field(NebariConfig, key, chosen, defaults, indent=0)
    return "\n".join(lines) + "\n"


def write_new_config(path: Path, text: str) -> None:
    """Create `path` with `text`, readable by its owner only; never overwrite a file."""
    try:
        # O_EXCL: the check and the creation are one step, so no existing file is clobbered.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigWriteError(
            path, "already exists; refusing to overwrite it (move it away first)"
        ) from None
    except OSError as err:
        raise ConfigWriteError(
            path, f"cannot create the file ({err.strerror}); check the folder exists and is writable"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as err:
        path.unlink(missing_ok=True)
        raise ConfigWriteError(path, f"cannot write the file ({err.strerror})") from None


def _choices(
    provider: str,
    project_name: str,
    domain: str | None,
    auth_type: str,
    root_password: str | dict[str, str] | None,
) -> dict[str, Any]:
    if provider not in PROVIDER_SECTIONS:
        raise ConfigError(
            _NAME,
            [f"{_NAME}: provider: should be one of {', '.join(PROVIDER_SECTIONS)} (got {provider!r})"],
        )
    by_lower = {kind.lower(): kind for kind in AUTHENTICATION_TYPES}
    kind = by_lower.get(auth_type.lower())
    if kind is None:
        allowed = ", ".join(AUTHENTICATION_TYPES)
        raise ConfigError(
            _NAME,
            [f"{_NAME}: security.authentication.type: should be one of {allowed} (got {auth_type!r})"],
        )
    keycloak: dict[str, Any] = {}
    if root_password is not None:
        keycloak["initial_root_password"] = root_password
    chosen: dict[str, Any] = {
        "provider": provider,
        # Written even though it is the default: it records which release the file follows.
        "nebari_version": NEBARI_VERSION,
        "project_name": project_name,
        "security": {"authentication": _authentication(kind), **({"keycloak": keycloak} if keycloak else {})},
        "theme": {"jupyterhub": {"hub_title": f"Nebari - {project_name}"}},
    }
    if domain:
        chosen["domain"] = domain
    cloud = dict(_CLOUD_DEFAULTS.get(provider, {}))
    if provider == "azure":
        # Storage account names are global; a suffix derived from the project keeps reruns stable.
        cloud["storage_account_postfix"] = hashlib.sha256(project_name.encode()).hexdigest()[:4]
    if cloud:
        chosen[PROVIDER_SECTIONS[provider]] = cloud
    return chosen


def _authentication(kind: str) -> dict[str, Any]:
    if kind == "password":
        return {"type": kind}
    secret = {"sops": AUTH_SECRETS_FILE, "key": f"{kind.lower()}.client_secret"}
    config: dict[str, Any] = {"client_id": f"<your {kind} client id>", "client_secret": secret}
    if kind == "Auth0":
        config["auth0_subdomain"] = "<your-auth0-subdomain>"
    if kind == "custom":
        config["authorization_url"] = "https://<your identity provider>/authorize"
        config["token_url"] = "https://<your identity provider>/token"  # noqa: S105 - a URL placeholder
    return {"type": kind, "config": config}


def _field(
    model: type[BaseModel],
    key: str,
    chosen: Mapping[str, Any] | None,
    defaults: Mapping[str, Any],
    indent: int,
) -> list[str]:
    """Lines for one key of `model`: its description, then its value, commented if default.

    `chosen` holds the explicit choices at this level; None means "inside a block that is
    already commented out", where everything is written plainly and the enclosing block
    adds the comment markers.
    """
    field = next(f for name, f in model.model_fields.items() if key in (name, f.alias))
    pad = " " * indent
    # An empty mapping sets nothing; writing its key bare would read as null.
    explicit = chosen is not None and key in chosen and chosen[key] != {}
    value = chosen[key] if chosen is not None and explicit else defaults.get(key)
    lines = [f"{pad}# {line}" for line in textwrap.wrap(field.description or "", _WIDTH - indent - 2)]

    submodel = _model_of(field.annotation, value)
    if submodel is not None and isinstance(value, Mapping):
        body = [f"{pad}{key}:"]
        sub_defaults = defaults.get(key) or {}
        for sub_name, sub_field in submodel.model_fields.items():
            body += _field(
                submodel, sub_field.alias or sub_name, value if explicit else None, sub_defaults, indent + 2
            )
    else:
        dumped = yaml.safe_dump(
            {key: value}, default_flow_style=False, sort_keys=False, allow_unicode=True, width=_WIDTH
        )
        body = [f"{pad}{line}" for line in dumped.splitlines()]

    if chosen is not None and not explicit:
        # Comment the whole block at the key's own column: removing that one "# " from each
        # line restores valid YAML, nested descriptions included.
        body = [f"{line[:indent]}# {line[indent:]}" for line in body]
    return lines + body


def _model_of(annotation: Any, value: Any) -> type[BaseModel] | None:
    """The model a value of this field is read as (a tagged union's member by its type)."""
    target = strip_annotation(annotation)
    if isinstance(value, Mapping) and "type" in value and not isinstance(target, type):
        member = union_member(annotation, TAG_MARK + str(value["type"]))
        target = strip_annotation(member) if member is not None else None
    if isinstance(target, type) and issubclass(target, BaseModel):
        return target
    return None
