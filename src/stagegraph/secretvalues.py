"""Resolve the secret values a stage's sensitive variables need, in memory only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from stagegraph.errors import SecretError


def lookup(config: BaseModel, path: str) -> Any:
    """Walk a dotted path; numeric parts index lists (`exhibits.0.token`)."""
    node: Any = config
    for part in path.split("."):
        if node is None:
            return None
        if isinstance(node, (list, tuple)) and part.isdigit():
            node = node[int(part)] if int(part) < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            node = getattr(node, part, None)
    return node


def resolve_secret(config: BaseModel, path: str, config_name: str) -> str | None:
    """The plaintext of the secret at `path`, or None when the config does not set it."""
    value = lookup(config, path)
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        plain = value.get_secret_value()
        return str(plain) if plain is not None else None
    if isinstance(value, str):
        return value
    raise SecretError(
        f"{config_name}: {path}: this secret refers to an encrypted file, and decrypting "
        "SOPS secrets is not available in this version; put the value in the config for now"
    )
