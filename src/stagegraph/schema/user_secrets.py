"""The `secrets:` section: SOPS-encrypted secrets handed to the JupyterLab pods of some groups.

From Nebari's "Include SOPS for secret management" proposal: an admin encrypts a secret
into `secrets/` (`doit secrets_encrypt`), names it here with how it reaches the pod (a
file, an environment variable or an image pull secret) and the Keycloak groups allowed to
have it. Stage 07 turns each entry into one Kubernetes secret, whose value travels as a
sensitive Terraform variable (never in a rendered file), and mounts it only into the pods
of users in those groups.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field

from stagegraph.schema.base import TAG_MARK, Section, pattern_check, pattern_schema, tag
from stagegraph.schema.secret import SecretKey, SopsPath

USER_SECRET_TYPES = ("file", "env", "image_pull_secret")
USER_SECRET_TYPE_ERROR = "user_secret_type"  # noqa: S105 - an error type name, not a password

# A DNS label short enough that `nebari-user-secret-<name>` stays a valid object name.
NAME_RE = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Absolute, no `.` or `..` segment, no trailing slash: the path of the file inside the pod.
MOUNT_PATH_RE = r"^(/(?!\.\.?(/|$))[A-Za-z0-9_.-]+)+$"

SecretName = Annotated[
    str,
    pattern_check(
        NAME_RE,
        "should be 1 to 40 lowercase letters, digits or -, starting and ending with a letter or digit",
    ),
    pattern_schema(NAME_RE),
]
EnvName = Annotated[
    str,
    pattern_check(ENV_NAME_RE, "should be an environment variable name such as DATA_TOKEN"),
    pattern_schema(ENV_NAME_RE),
]
MountPath = Annotated[
    str,
    pattern_check(MOUNT_PATH_RE, "should be an absolute file path such as /etc/nebari-secrets/token"),
    pattern_schema(MOUNT_PATH_RE),
]
Groups = Annotated[
    list[Annotated[str, Field(min_length=1)]],
    Field(min_length=1, description="Keycloak groups whose members get the secret (at least one)."),
]

#: Where a file secret appears when `mount_path` is not given.
DEFAULT_MOUNT_DIR = "/etc/nebari-secrets"


class UserSecretBase(Section):
    """What every entry of `secrets:` has: a name, where the value is, and who gets it."""

    name: SecretName = Field(
        description="Name of the secret; the Kubernetes secret is nebari-user-secret-<name>."
    )
    sops: SopsPath = Field(
        description="SOPS-encrypted file under secrets/ holding the value (e.g. secrets/users.enc.yaml)."
    )
    key: SecretKey = Field(description="Dotted key of the value inside that file (e.g. s3.token).")
    groups: Groups


class FileSecret(UserSecretBase):
    """A secret mounted as a read-only file into the pods of the allowed groups."""

    type: Literal["file"] = Field(description="How the secret reaches the pod.")
    mount_path: MountPath | None = Field(
        None, description=f"Path of the file inside the pod (default {DEFAULT_MOUNT_DIR}/<name>)."
    )

    @property
    def path_in_pod(self) -> str:
        return self.mount_path or f"{DEFAULT_MOUNT_DIR}/{self.name}"


class EnvSecret(UserSecretBase):
    """A secret set as an environment variable in the pods of the allowed groups."""

    type: Literal["env"] = Field(description="How the secret reaches the pod.")
    env_name: EnvName | None = Field(
        None, description="Name of the environment variable (default: the name in upper case, - as _)."
    )

    @property
    def variable(self) -> str:
        return self.env_name or self.name.upper().replace("-", "_")


class ImagePullSecret(UserSecretBase):
    """A registry credential (a Docker config JSON) used to pull the images of the allowed groups."""

    type: Literal["image_pull_secret"] = Field(description="How the secret reaches the pod.")


def _secret_type(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return TAG_MARK + kind if kind in USER_SECRET_TYPES else None


UserSecret = Annotated[
    Annotated[FileSecret, tag("file")]
    | Annotated[EnvSecret, tag("env")]
    | Annotated[ImagePullSecret, tag("image_pull_secret")],
    Discriminator(
        _secret_type,
        custom_error_type=USER_SECRET_TYPE_ERROR,
        custom_error_message="type should be one of file, env, image_pull_secret",
    ),
]

#: The classes a `secrets:` entry can be, for isinstance checks.
USER_SECRET_CLASSES: tuple[type[UserSecretBase], ...] = (FileSecret, EnvSecret, ImagePullSecret)


def _unique(entries: list[Any]) -> list[Any]:
    # Two entries of one name would be one Kubernetes secret written twice; two of one
    # variable would silently shadow each other in the pod.
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise ValueError(f"name {entry.name!r} is used twice; give each secret its own name")
        seen.add(entry.name)
    variables: set[str] = set()
    paths: set[str] = set()
    for entry in entries:
        if isinstance(entry, EnvSecret):
            if entry.variable in variables:
                raise ValueError(f"environment variable {entry.variable!r} is set by two secrets")
            variables.add(entry.variable)
        if isinstance(entry, FileSecret):
            if entry.path_in_pod in paths:
                raise ValueError(f"mount path {entry.path_in_pod!r} is used by two secrets")
            paths.add(entry.path_in_pod)
    return entries


UserSecrets = Annotated[list[UserSecret], AfterValidator(_unique)]
