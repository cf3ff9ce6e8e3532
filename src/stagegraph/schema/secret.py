"""Secret config values: a plaintext string kept as `SecretStr`, or a reference to SOPS.

Every credential field in the config has the type `SecretValue`. A plain string becomes a
pydantic `SecretStr`, so it shows as `**********` in reprs, error messages and dumps
(`model_dump(mode="json")` included); only an explicit `get_secret_value()` reveals it.
A mapping `{sops: secrets/<file>, key: <dotted.key>}` names a value inside a
SOPS-encrypted file, which the deploy layer decrypts when a stage needs it, so the config
in git can hold no plaintext at all.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Field, SecretStr

from stagegraph.schema.base import TAG_MARK, Section, pattern_check, pattern_schema, tag

#: Error type raised when a secret field gets neither a string nor a reference.
SECRET_TYPE_ERROR = "secret_value_type"  # noqa: S105 - an error type name, not a password

PLAIN_TAG = TAG_MARK + "secret-plain"
REF_TAG = TAG_MARK + "secret-ref"
#: Union tags that mark an error path as inside a secret field (its value is redacted).
SECRET_TAGS = frozenset({PLAIN_TAG, REF_TAG})


# Relative and inside secrets/; no segment may start with a dot, which rules out `..`
# escapes: the file lives in git next to the config, and a reference must not read
# arbitrary files.
SOPS_PATH_RE = r"^secrets/([A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
SECRET_KEY_RE = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"  # noqa: S105 - a pattern, not a password

SopsPath = Annotated[
    str,
    pattern_check(SOPS_PATH_RE, "should be a file inside secrets/, e.g. secrets/keycloak.enc.yaml"),
    pattern_schema(SOPS_PATH_RE),
]
SecretKey = Annotated[
    str,
    pattern_check(SECRET_KEY_RE, "should be a dotted key such as keycloak.root_password"),
    pattern_schema(SECRET_KEY_RE),
]


class SecretRef(Section):
    """Where to find a secret: a key inside a SOPS-encrypted file under `secrets/`."""

    sops: SopsPath = Field(
        description="Path of the SOPS-encrypted file, relative to the config file's folder and inside "
        "secrets/ (e.g. secrets/keycloak.enc.yaml).",
    )
    key: SecretKey = Field(
        description="Dotted key of the value inside the decrypted file (e.g. keycloak.root_password).",
    )


def _secret_kind(value: Any) -> str | None:
    if isinstance(value, (dict, SecretRef)):
        return REF_TAG
    if isinstance(value, (str, SecretStr)):
        return PLAIN_TAG
    return None


#: The type of every credential field: plaintext (masked everywhere) or a SOPS reference.
SecretValue = Annotated[
    Annotated[SecretStr, tag("secret-plain")] | Annotated[SecretRef, tag("secret-ref")],
    Discriminator(
        _secret_kind,
        custom_error_type=SECRET_TYPE_ERROR,
        custom_error_message="Input should be a secret: a string, or a mapping with keys "
        "sops (a file under secrets/) and key (a dotted key in that file)",
    ),
]


def is_secret_annotation(annotation: Any) -> bool:
    """Whether a field annotation is (or optionally contains) `SecretValue`."""
    if annotation is SecretRef or annotation is SecretStr:
        return True
    origin = typing.get_origin(annotation)
    if origin is Annotated or origin is Union or origin is types.UnionType:
        return any(is_secret_annotation(arg) for arg in typing.get_args(annotation))
    return False


def secret_fields(config: BaseModel) -> list[tuple[str, SecretStr | SecretRef]]:
    """The dotted path and value of every secret present in `config`, in field order.

    Paths use attribute names, mapping keys and list indices, the same form as the paths in
    error messages (e.g. `security.keycloak.initial_root_password`,
    `jupyterlab.gallery_settings.exhibits.0.token`). Unset optional secrets are omitted.
    """
    found: list[tuple[str, SecretStr | SecretRef]] = []
    _collect(config, "", found)
    return found


def _collect(node: Any, path: str, found: list[tuple[str, SecretStr | SecretRef]]) -> None:
    if isinstance(node, (SecretStr, SecretRef)):
        found.append((path, node))
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            _collect(getattr(node, name), _join(path, name), found)
    elif isinstance(node, dict):
        for key, value in node.items():
            _collect(value, _join(path, str(key)), found)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _collect(value, _join(path, str(index)), found)


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part
