"""Put values into a SOPS file under `secrets/`, plaintext never touching the disk.

A new file is encrypted from JSON on sops's stdin and the ciphertext saved atomically; an
existing file gets each value with `sops set --value-stdin`, which re-encrypts only that
value, so the other secrets of the file keep their ciphertext (and the stages that read
them stay up to date).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stagegraph.errors import SecretError
from stagegraph.schema.secret import SOPS_PATH_RE
from stagegraph.sops.errors import RulesError
from stagegraph.sops.rules import RULES_FILE, load_rules, rule_for, rules_path
from stagegraph.sops.run import Sops
from stagegraph.sops.store import read_ciphertext


def nested(values: Mapping[str, str]) -> dict[str, Any]:
    """`{"a.b": v}` -> `{"a": {"b": v}}`; a key both a value and a parent is an error."""
    doc: dict[str, Any] = {}
    for key, value in values.items():
        node = doc
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SecretError(f"key {key!r}: {part!r} already holds a value; pick another key")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise SecretError(f"key {key!r}: already holds other keys below it; pick another key")
        node[parts[-1]] = value
    return doc


def put_values(sops: Sops, label: str, values: Mapping[str, str]) -> str:
    """Write `values` (dotted key -> plaintext) into the SOPS file `label`; returns `label`."""
    root = sops.cwd
    path = root / label
    if path.exists():
        read_ciphertext(path, label)  # refuse to "add" to a plaintext file
        for key, value in values.items():
            sops.set_value(label, key, value)
        return label
    rules = load_rules(root)
    if rule_for(rules, label) is None:
        raise RulesError(
            f"{label}: no creation rule in {RULES_FILE} matches it; name the file *.enc.yaml, or add a rule "
            "(`doit secrets_keygen` adds one for your key)"
        )
    document = nested(values)
    ciphertext = sops.encrypt(rules_path(root), label, document)
    from stagegraph.atomic import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, ciphertext, mode=0o644)  # ciphertext: meant to be committed to git
    return label


def secret_label(name: str) -> str:
    """`--name`: `keycloak` -> `secrets/keycloak.enc.yaml`; a path under secrets/ as is."""
    if name.startswith("secrets/"):
        label = name
    elif Path(name).suffix in (".yaml", ".yml", ".json"):
        label = f"secrets/{name}"
    else:
        label = f"secrets/{name}.enc.yaml"
    if re.match(SOPS_PATH_RE, label) is None:
        raise SecretError(f"--name {name!r}: give a short name (keycloak) or a path inside secrets/ (no ..)")
    return label
