"""Plaintext secrets in the config: warn about them, and move them into `secrets/`.

A plaintext secret in `nebari-config.yaml` still works (Nebari's configs have them), but
every load warns once per field. `doit secrets_move` encrypts each into one SOPS file
(`secrets/nebari-config.enc.yaml` by default, the config path as key) and rewrites the
field as a reference with a ruamel.yaml round trip, so every comment and the layout of the
rest of the file stay as they were. The config is rewritten only after each moved value
decrypts back to what it was.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from stagegraph.errors import SecretError
from stagegraph.schema.secret import SECRET_KEY_RE, SOPS_PATH_RE, secret_fields

if TYPE_CHECKING:
    from stagegraph.sops.run import Sops

DEFAULT_MOVE_FILE = "secrets/nebari-config.enc.yaml"


class MoveError(SecretError):
    """Plaintext secrets could not be moved out of the config."""


def plaintext_paths(config: BaseModel) -> list[str]:
    """Dotted paths of the config's secret fields that hold a plaintext value."""
    return [path for path, value in secret_fields(config) if isinstance(value, SecretStr)]


def plaintext_warnings(config: BaseModel, config_name: str) -> list[str]:
    """One warning line per plaintext secret in the config (print each once per run)."""
    return [
        f"warning: {config_name}: {path}: holds a plaintext secret; move it into secrets/ with "
        "`doit secrets_move` (the config then refers to the encrypted file)"
        for path in plaintext_paths(config)
    ]


def move_plaintext(
    config_path: Path,
    config: BaseModel,
    config_name: str,
    sops: Sops,
    target: str = DEFAULT_MOVE_FILE,
) -> list[str]:
    """Encrypt every plaintext secret of the config into `target`; rewrite the config.

    Returns the lines to show. Raises before touching the config when anything fails.
    """
    from stagegraph.sops.store import SecretStore
    from stagegraph.sops.writing import put_values

    paths = plaintext_paths(config)
    if not paths:
        return [f"{config_name}: no plaintext secret; nothing to move"]
    if re.match(SOPS_PATH_RE, target) is None:
        raise MoveError(f"--file {target!r}: should be a file inside secrets/, e.g. {DEFAULT_MOVE_FILE}")
    for path in paths:
        if re.match(SECRET_KEY_RE, path) is None:
            raise MoveError(
                f"{config_name}: {path}: cannot be used as a key in {target}; move this one by hand"
            )
    values = {path: _plain(config, path) for path in paths}

    written = put_values(sops, target, values)
    # Read every value back through a fresh store before the config loses its copy.
    check = SecretStore()
    for path, value in values.items():
        if check.value(sops, target, path) != value:
            raise MoveError(
                f"{target}: {path} did not decrypt to the moved value; the config was left unchanged"
            )

    text = config_path.read_text(encoding="utf-8")
    new_text = rewrite_config(text, {path: {"sops": target, "key": path} for path in paths}, config_name)
    from stagegraph.configfile import parse_config

    parse_config(new_text, config_name)  # the rewritten config must still be valid
    from stagegraph.atomic import write_atomic

    mode = os.stat(config_path).st_mode & 0o777
    write_atomic(config_path, new_text, mode=mode)
    return [
        f"{written}: encrypted {len(paths)} secret(s) from {config_name}: {', '.join(paths)}",
        f"{config_name}: each now refers to {target} (comments kept)",
        "the old plaintext is still in your git history: change those secrets if the config was ever pushed",
    ]


def _plain(config: BaseModel, path: str) -> str:
    from stagegraph.secretvalues import lookup

    value = lookup(config, path)
    assert isinstance(value, SecretStr)
    return value.get_secret_value()


def rewrite_config(text: str, replacements: dict[str, dict[str, str]], config_name: str) -> str:
    """The config text with the field at each dotted path replaced by a mapping."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines of the user's file
    data = yaml.load(text)
    for path, ref in replacements.items():
        parts = path.split(".")
        node: Any = data
        for part in parts[:-1]:
            node = _child(node, part, path, config_name)
        last = parts[-1]
        _child(node, last, path, config_name)  # raises when the key is not there as written
        mapping = CommentedMap()
        for key, value in ref.items():
            mapping[key] = value
        if isinstance(node, list):
            node[int(last)] = mapping
        else:
            node[last] = mapping
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _child(node: Any, part: str, path: str, config_name: str) -> Any:
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    if isinstance(node, dict) and part in node:
        return node[part]
    raise MoveError(
        f"{config_name}: {path}: not found in the file as written (an alias?); move this one by hand"
    )
