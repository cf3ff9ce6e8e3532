"""Shared setup for the SOPS tests: real age keys (pyrage), the real sops binary, a project.

Imported by the test_sops_* and test_secrets_* modules (and by conftest.py for the `keys`
fixture); it holds no tests itself. Every test gets its own key files and an environment in which sops can find no other key:
SOPS_AGE_KEY_FILE points into the test's folder and XDG_CONFIG_HOME away from the user's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from stagegraph.project import Project
from stagegraph.sops.keys import generate_key
from stagegraph.sops.store import STORE
from stagegraph.sops.tasks import secrets_encrypt

ROOT = Path(__file__).resolve().parents[1]
CANARY = "canary-3f9d0b7e-do-not-leak"  # a value that must never show up outside sops files
#: The config field that `root_password_ref` fills, and the encrypted file it names.
FIELD = "security.keycloak.initial_root_password"
FILE = "secrets/keycloak.enc.yaml"

#: Variables that would let sops find a key other than the test's own.
FOREIGN_KEY_VARS = (
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_CMD",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
    "SOPS_AGE_RECIPIENTS",
    "SOPS_CONFIG",
    "STAGEGRAPH_CONFIG",
)


@dataclass
class AgeKeys:
    """Two real age identities: `mine` (in SOPS_AGE_KEY_FILE) and `other` (someone else's)."""

    mine: Path
    mine_public: str
    other: Path
    other_public: str


def isolate_sops(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name in FOREIGN_KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))


def make_keys(monkeypatch: pytest.MonkeyPatch, where: Path) -> AgeKeys:
    isolate_sops(monkeypatch, where)
    mine, other = where / "keys" / "mine.txt", where / "keys" / "other.txt"
    keys = AgeKeys(mine, generate_key(mine), other, generate_key(other))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(mine))
    return keys


def write_rules(root: Path, *recipients: str, regex: str = r"\.enc\.(yaml|yml|json)$") -> None:
    (root / "secrets").mkdir(parents=True, exist_ok=True)
    rules = {"creation_rules": [{"path_regex": regex, "age": ",".join(recipients)}]}
    (root / "secrets" / ".sops.yaml").write_text(yaml.safe_dump(rules))


def write_config(root: Path, **extra: object) -> Path:
    config = {"project_name": "demo", "provider": "sandbox", **extra}
    path = root / "nebari-config.yaml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def project_at(root: Path) -> Project:
    return Project.discover(root, None, env={})


def root_password_ref(file: str = FILE, key: str = "keycloak.root_password") -> dict[str, object]:
    return {"security": {"keycloak": {"initial_root_password": {"sops": file, "key": key}}}}


def sops_project(root: Path, keys: AgeKeys, **config: object) -> Path:
    """A project at `root` whose sops rule encrypts for `keys.mine`, with `config` in its config."""
    write_rules(root, keys.mine_public)
    write_config(root, **config)
    return root


def keycloak_project(root: Path, keys: AgeKeys, **others: str) -> Path:
    """A project whose config refers to keycloak.root_password (= CANARY) in
    secrets/keycloak.enc.yaml; `others` are more keys of that file (keycloak.<name>: value).
    The store is left empty."""
    sops_project(root, keys, **root_password_ref())
    secrets_encrypt(project_at(root), name="keycloak", key="keycloak.root_password", value=CANARY)
    for name, value in others.items():
        secrets_encrypt(project_at(root), name="keycloak", key=f"keycloak.{name}", value=value)
    STORE.clear()
    return root
