"""What a stage's apply depends on, as named digests, and the fingerprint over them.

The record of a successful apply keeps these digests, so `why <stage>` can name exactly the
input that changed, and a stage is up to date when nothing did. Inputs are: the rendered
files as they are on disk, each upstream value the stage takes as a variable, each pin it
declares, and each secret it reads (keyed digests: a weak password cannot be guessed back
from a record).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stagegraph.errors import DeployError
from stagegraph.lockfile import Lockfile, pin_digest
from stagegraph.render import MANIFEST, file_digest, read_manifest
from stagegraph.stage import Stage

KEY_FILE = "digest.key"


def value_digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:20]


def digest_key(state_dir: Path) -> bytes:
    """A per-project random key (0600) for secret digests, created on first use."""
    path = state_dir / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        state_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key
    except FileExistsError:  # pragma: no cover - another thread won the race
        return path.read_bytes()


def secret_digest(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:20]


def render_inputs_of(stage_dir: Path) -> dict[str, str]:
    """What the last render of a stage read (config sections, code), from its manifest."""
    manifest = read_manifest(stage_dir) or {}
    inputs = manifest.get("inputs", {})
    return {str(k): str(v) for k, v in inputs.items()} if isinstance(inputs, dict) else {}


def rendered_files(stage_dir: Path, stage: str) -> dict[str, str]:
    """Digests of the rendered files as they are on disk now (hand edits count)."""
    manifest = read_manifest(stage_dir)
    if manifest is None:
        raise DeployError(f"{stage_dir / MANIFEST}: stage {stage} has not been rendered; run `doit render`")
    out: dict[str, str] = {}
    for name in sorted(manifest.get("files", {})):
        try:
            out[name] = file_digest((stage_dir / name).read_bytes())
        except OSError:
            out[name] = "missing"
    return out


#: Inputs that decide staleness. Others in a record ("config:<section>", "code",
#: "provider": what the render read) only explain a change; a config edit that leaves the
#: rendered files alone re-applies nothing.
FINGERPRINTED = ("file:", "var:", "pin:", "secret:")


def deploy_inputs(
    stage: Stage,
    files: Mapping[str, str],
    variables: Mapping[str, Any],
    lock: Lockfile,
    secret_digests: Mapping[str, str],
    render_inputs: Mapping[str, str] | None = None,
) -> dict[str, str]:
    inputs: dict[str, str] = {
        k: v for k, v in (render_inputs or {}).items() if not k.startswith(FINGERPRINTED)
    }
    inputs.update({f"file:{n}": d for n, d in files.items()})
    inputs.update({f"var:{k}": value_digest(v) for k, v in variables.items()})
    inputs.update({f"pin:{k}": pin_digest(lock.pin(k)) for k in stage.pins})
    inputs.update({f"secret:{k}": d for k, d in secret_digests.items()})
    return dict(sorted(inputs.items()))


def fingerprint(inputs: Mapping[str, str]) -> str:
    return value_digest({k: v for k, v in inputs.items() if k.startswith(FINGERPRINTED)})


def changed_inputs(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Human lines naming each input that differs: changed, new or gone."""
    lines = []
    # Fingerprinted inputs first: they are what makes the stage re-apply.
    keys = sorted(set(old) | set(new), key=lambda k: (not k.startswith(FINGERPRINTED), k))
    for key in keys:
        if key not in old:
            lines.append(f"{key}: new input")
        elif key not in new:
            lines.append(f"{key}: no longer an input")
        elif old[key] != new[key]:
            lines.append(f"{key}: changed")
    return lines
