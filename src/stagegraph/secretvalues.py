"""Resolve the secret values a stage's sensitive variables need, in memory only.

A secret field of the config holds a plaintext (`SecretStr`) or a reference
`{sops: secrets/<file>, key: <dotted.key>}`; a reference is decrypted through the
per-process store (`stagegraph.sops.store`), so each file is decrypted at most once per
run. The `secrets:` section (secrets for platform users) resolves as a whole to one JSON
object `{name: value}`, the value of stage 07's single `user_secrets` variable.

What decides staleness is `secret_digest_input`: for a reference, a digest of the
ciphertext of that one value, which needs no key and changes exactly when the encrypted
value does (a new value, a rotated data key); for a plaintext, None, and the engine keeps
its keyed digest of the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from stagegraph.errors import SecretError
from stagegraph.schema.secret import SecretRef
from stagegraph.schema.user_secrets import UserSecretBase

if TYPE_CHECKING:
    from stagegraph.stage import SensitiveInput


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


def resolve_secret(
    config: BaseModel, path: str, config_name: str, project_root: Path | None = None
) -> str | None:
    """The plaintext of the secret at `path`, or None when the config does not set it.

    `project_root` is where `secrets/` is (default: the working directory, which is the
    folder of dodo.py in a doit run).
    """
    value = lookup(config, path)
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        plain = value.get_secret_value()
        return str(plain) if plain is not None else None
    if isinstance(value, str):
        return value
    root = Path.cwd() if project_root is None else project_root
    if isinstance(value, SecretRef):
        return _decrypt(config, root, value.sops, value.key, f"{config_name}: {path}")
    if isinstance(value, UserSecretBase):
        return _decrypt(config, root, value.sops, value.key, f"{config_name}: {path}")
    if _is_user_secrets(value):
        if not value:
            return None
        values = {
            entry.name: _decrypt(config, root, entry.sops, entry.key, f"{config_name}: {path}.{index}")
            for index, entry in enumerate(value)
        }
        return json.dumps(values, sort_keys=True, separators=(",", ":"))
    raise SecretError(
        f"{config_name}: {path}: is not a secret field (got {type(value).__name__}); "
        "the stage's SensitiveInput names the wrong config path"
    )


def secret_digest_input(config: BaseModel, path: str, project_root: Path | None = None) -> str | None:
    """What a stage's `secret:<variable>` input is for an encrypted secret, else None.

    A digest of the ciphertext (no decryption, no key needed); None for plaintext or unset
    secrets, for which the engine digests the value with its per-project key.
    """
    from stagegraph.sops.files import ciphertext_digest
    from stagegraph.sops.store import read_ciphertext

    value = lookup(config, path)
    root = Path.cwd() if project_root is None else project_root
    entries = list(value) if _is_user_secrets(value) else [value]
    refs = [(entry.sops, entry.key) for entry in entries if isinstance(entry, (SecretRef, UserSecretBase))]
    if not refs:
        return None
    digests = []
    for label, key in refs:
        data = read_ciphertext(root / label, label, path)
        digests.append(ciphertext_digest(root / label, key, data=data, label=label))
    return "sops:" + (digests[0] if len(digests) == 1 else _combine(digests))


def secret_digests(
    config: BaseModel,
    sensitive: Iterable[SensitiveInput],
    config_name: str,
    project_root: Path | None,
    key: bytes,
) -> dict[str, str]:
    """A stage's `secret:` inputs without decrypting anything: variable -> digest.

    The same digests `deploy.secret_env` computes (ciphertext digests for encrypted
    secrets, keyed digests of plaintext ones), so deciding whether a stage is up to date
    needs no key; only applying it does.
    """
    from stagegraph.fingerprint import secret_digest

    digests: dict[str, str] = {}
    for item in sensitive:
        encrypted = secret_digest_input(config, item.config_path, project_root)
        if encrypted is not None:
            digests[item.variable] = encrypted
            continue
        value = resolve_secret(config, item.config_path, config_name, project_root)  # plaintext or unset
        if value is not None:
            digests[item.variable] = secret_digest(key, value)
    return digests


def _combine(digests: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:20]


def _is_user_secrets(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, UserSecretBase) for v in value)


def _decrypt(config: BaseModel, root: Path, label: str, key: str, referrer: str) -> str:
    from stagegraph.sops.run import project_sops
    from stagegraph.sops.store import STORE

    sops = project_sops(root, _sops_preference(config))
    return STORE.value(sops, label, key, referrer=referrer)


def _sops_preference(config: BaseModel) -> str:
    tool = getattr(getattr(config, "stagegraph", None), "sops", None)
    binary = getattr(tool, "binary", None)
    return binary if isinstance(binary, str) else "auto"


def check_secret_files(config: BaseModel, project_root: Path, config_name: str) -> None:
    """Every SOPS file the config names exists and is ciphertext (no key needed: `validate`).

    Raises the first problem as one line naming the config field that refers to the file.
    """
    from stagegraph.schema.secret import secret_fields
    from stagegraph.sops.store import read_ciphertext

    refs = [(path, value.sops) for path, value in secret_fields(config) if isinstance(value, SecretRef)]
    users = getattr(config, "secrets", None) or []
    refs += [
        (f"secrets.{i}.sops", entry.sops)
        for i, entry in enumerate(users)
        if isinstance(entry, UserSecretBase)
    ]
    for path, label in refs:
        read_ciphertext(project_root / label, label, referrer=f"{config_name}: {path}")
