"""Decrypted secret files, each decrypted at most once per process (one doit run).

A deploy asks for the same secret several times: to decide whether a stage is up to date,
then to apply it, maybe for `doit status` afterwards. The store reads the ciphertext,
checks it is a SOPS file at all (a plaintext file is refused before sops sees it), and
decrypts it once; later lookups hit the cache. The cache is keyed by the file and a
digest of its bytes, so a file changed during the process is decrypted again rather than
served stale. Threads (`doit -P thread`) decrypting the same file wait for one another.

The decrypted documents live in this process's memory only.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from stagegraph.sops.errors import (
    NotEncryptedError,
    SecretFileMissingError,
    SecretKeyMissingError,
    SecretValueError,
)
from stagegraph.sops.files import file_format, has_key, is_encrypted, leaf_keys, lookup, parse_tree
from stagegraph.sops.run import Sops

_MAX_KEYS_SHOWN = 8


class SecretStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file_locks: dict[Path, threading.Lock] = {}
        self._cache: dict[tuple[Path, str], dict[str, Any]] = {}
        #: How many times sops decrypted something, for tests of "at most once".
        self.decryptions = 0

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def document(self, sops: Sops, label: str, *, referrer: str = "") -> dict[str, Any]:
        """The decrypted content of `label` (a path relative to the project root)."""
        path = (sops.cwd / label).resolve()
        data = read_ciphertext(path, label, referrer)
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            file_lock = self._file_locks.setdefault(path, threading.Lock())
        with file_lock:
            cached = self._cache.get((path, digest))
            if cached is not None:
                return cached
            tree = sops.decrypt(label, data)
            self.decryptions += 1
            with self._lock:
                # One entry per file: an older version's plaintext is not kept around.
                for key in [k for k in self._cache if k[0] == path]:
                    del self._cache[key]
                self._cache[(path, digest)] = tree
            return tree

    def value(self, sops: Sops, label: str, key: str, *, referrer: str = "") -> str:
        """One value of a decrypted file, as a string."""
        tree = self.document(sops, label, referrer=referrer)
        where = f"{referrer}: " if referrer else ""
        if not has_key(tree, key):
            raise SecretKeyMissingError(
                f"{where}key {key!r} not found in {label} (it has: {_keys(tree)}); add it with "
                f"`doit secrets_encrypt --name {label} --key {key} --from-env VAR`, or fix the key"
            )
        node = lookup(tree, key)
        if isinstance(node, (dict, list)) or node is None:
            raise SecretValueError(
                f"{where}{label}: {key!r} is not a single value; name a key below it (it has: {_keys(node)})"
            )
        return node if isinstance(node, str) else _scalar(node)


def read_ciphertext(path: Path, label: str, referrer: str = "") -> bytes:
    """The bytes of a secret file, refused unless they are SOPS ciphertext."""
    named = f" (named by {referrer})" if referrer else ""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SecretFileMissingError(
            f"{label}: not found{named}; create it with `doit secrets_encrypt --name {label} --key KEY "
            "--from-env VAR`, or restore it from git"
        ) from None
    except OSError as exc:
        raise SecretFileMissingError(
            f"{label}: cannot read it{named} ({exc.strerror}); check its permissions"
        ) from None
    if not is_encrypted(data, file_format(label)):
        raise NotEncryptedError(
            f"{label}: not encrypted (no sops metadata){named}: a plaintext file where a SOPS file is "
            "expected; encrypt the secret with `doit secrets_encrypt`, delete the plaintext and purge it from git"
        )
    return data


def ciphertext_keys(path: Path, label: str) -> list[str]:
    """Dotted keys the file holds, read from the ciphertext (no key needed)."""
    data = read_ciphertext(path, label)
    tree = parse_tree(data, file_format(label))
    return leaf_keys(tree) if tree is not None else []


def _keys(tree: Any) -> str:
    keys = leaf_keys(tree)
    shown = ", ".join(keys[:_MAX_KEYS_SHOWN]) + (", ..." if len(keys) > _MAX_KEYS_SHOWN else "")
    return shown or "no keys"


def _scalar(value: Any) -> str:
    # JSON spelling for booleans (true, not True): the form a user wrote in YAML.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


#: The store of this process.
STORE = SecretStore()
