"""What can be known about a SOPS file without decrypting it.

A SOPS file keeps its structure in clear: keys, nesting and the `sops` metadata are plain,
and only the values are `ENC[...]` strings. So without any key we can tell whether a file
is encrypted at all, whether it holds a given key, and digest the ciphertext of one value.
That digest is what decides whether a stage that reads the secret is stale: `sops set`
re-encrypts only the value it sets, so changing one secret re-applies only the stages that
read that one, even when several secrets share a file.

Nothing here ever returns or raises with file content: a "secrets" file may turn out to be
plaintext, and its content must not reach a message.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml

Format = Literal["yaml", "json", "dotenv", "ini", "binary"]

_BY_SUFFIX: dict[str, Format] = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".env": "dotenv",
    ".ini": "ini",
}
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MISSING = object()


def file_format(path: str | Path) -> Format:
    """The format sops reads a file as, from its name (as sops itself decides)."""
    return _BY_SUFFIX.get(Path(path).suffix.lower(), "binary")


def parse_tree(data: bytes, fmt: Format) -> dict[str, Any] | None:
    """The document as data (values still ciphertext), or None when it does not parse."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if fmt == "dotenv":
        pairs = [line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")]
        return {key.strip(): value for key, value in pairs}
    if fmt == "ini":
        return None  # key lookups in ini files are not supported; the whole file is the input
    try:
        # Encrypted binary files are stored by sops as JSON ({"data": ..., "sops": ...}).
        tree = json.loads(text) if fmt in ("json", "binary") else yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except (ValueError, yaml.YAMLError):
        return None
    return tree if isinstance(tree, dict) else None


def is_encrypted(data: bytes, fmt: Format) -> bool:
    """Whether the content carries sops metadata with a MAC (it was written by sops)."""
    if fmt == "ini":
        text = data.decode("utf-8", "replace")
        return "[sops]" in text and "mac" in text
    tree = parse_tree(data, fmt)
    if tree is None:
        return False
    if fmt == "dotenv":
        return "sops_mac" in tree and "sops_version" in tree
    meta = tree.get("sops")
    return isinstance(meta, dict) and "mac" in meta and "version" in meta


def lookup(tree: Any, key: str) -> Any:
    """The node at a dotted key (mapping keys compared as strings, list parts as indices).

    Returns the module's `_MISSING` sentinel when absent; see `has_key`.
    """
    node = tree
    for part in key.split("."):
        if isinstance(node, dict):
            match = next((v for k, v in node.items() if str(k) == part), _MISSING)
            if match is _MISSING:
                # A flat file (dotenv) may hold a key with dots in it.
                return node.get(key, _MISSING) if node is tree else _MISSING
            node = match
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def has_key(tree: Any, key: str) -> bool:
    return lookup(tree, key) is not _MISSING


def leaf_keys(tree: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf, `sops` metadata left out (names only, never values)."""
    out: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not prefix and (key == "sops" or str(key).startswith("sops_")):
                continue
            out += leaf_keys(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            out += leaf_keys(value, f"{prefix}.{index}" if prefix else str(index))
    else:
        out.append(prefix)
    return out


def ciphertext_digest(
    path: Path, key: str | None = None, *, data: bytes | None = None, label: str | None = None
) -> str:
    """Digest of the ciphertext of `key` in the file (of the whole file without a key).

    The digest covers `label` (the file as the config names it, default its name) and the
    key too, so pointing a stage at another secret counts as a change. Falls back to the whole file when the key's ciphertext cannot be found (ini,
    binary files), which only makes a stage re-apply more often, never less.
    """
    raw = path.read_bytes() if data is None else data
    node: Any = _MISSING
    if key is not None:
        tree = parse_tree(raw, file_format(path))
        if tree is not None:
            node = lookup(tree, key)
    if node is _MISSING:
        body = raw
    else:
        body = json.dumps(node, sort_keys=True, separators=(",", ":"), default=str).encode()
    h = hashlib.sha256()
    for part in ((label or path.name).encode(), (key or "").encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:20]
