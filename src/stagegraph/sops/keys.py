"""age key pairs: create one (pyrage, no `age-keygen` binary needed) and find the local one.

The private key is written once, owner-only (0600, in a 0700 folder), to the file sops
reads by default or to a path given; it is never printed, returned in a message or
logged. Only the public recipient (`age1...`) is shown, since that is what goes into
`secrets/.sops.yaml`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from stagegraph.errors import SecretError

_SECRET_PREFIX = "AGE-SECRET-KEY-"  # noqa: S105 - the format marker of age identities


class KeyFileError(SecretError):
    """An age key file cannot be written or read."""


@dataclass(frozen=True)
class LocalKey:
    """Where the local age identity is, and its public recipient(s)."""

    path: Path | None  # None: the key came from SOPS_AGE_KEY
    recipients: tuple[str, ...]


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """The file sops reads age keys from when SOPS_AGE_KEY_FILE is not set.

    sops looks in its user config dir: %AppData% on Windows; elsewhere $XDG_CONFIG_HOME
    when set, else ~/Library/Application Support on macOS and ~/.config on Linux; then
    `sops/age/keys.txt` inside it.
    """
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        base = Path(env.get("AppData", str(Path.home())))
    elif env.get("XDG_CONFIG_HOME"):
        base = Path(env["XDG_CONFIG_HOME"])
    elif sys.platform == "darwin":
        base = Path(env.get("HOME", str(Path.home()))) / "Library" / "Application Support"
    else:
        base = Path(env.get("HOME", str(Path.home()))) / ".config"
    return base / "sops" / "age" / "keys.txt"


def key_file(environ: Mapping[str, str] | None = None) -> Path:
    """The key file sops will read: SOPS_AGE_KEY_FILE, else the default one."""
    env = os.environ if environ is None else environ
    chosen = env.get("SOPS_AGE_KEY_FILE")
    return Path(chosen).expanduser() if chosen else default_key_file(env)


def recipients_of(text: str, where: str) -> tuple[str, ...]:
    """Public recipients of every identity in an age key file's text."""
    from pyrage import x25519

    found: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(_SECRET_PREFIX):
            try:
                found.append(str(x25519.Identity.from_str(line).to_public()))
            except Exception:
                raise KeyFileError(
                    f"{where}: a line that looks like an age key does not parse; fix or replace the file"
                ) from None
    return tuple(found)


def local_key(environ: Mapping[str, str] | None = None) -> LocalKey | None:
    """The age identity sops would use here, or None when there is none."""
    env = os.environ if environ is None else environ
    if env.get("SOPS_AGE_KEY"):
        return LocalKey(None, recipients_of(env["SOPS_AGE_KEY"], "SOPS_AGE_KEY"))
    path = key_file(env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise KeyFileError(
            f"{path}: cannot read the age key file ({reason}); check its permissions"
        ) from None
    recipients = recipients_of(text, str(path))
    return LocalKey(path, recipients) if recipients else None


def generate_key(path: Path) -> str:
    """Write a new age identity to `path` (0600, never overwriting); return its recipient."""
    from pyrage import x25519

    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: an existing key file (maybe the only copy of a key) is never clobbered.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path}: an age key file exists already; keep it (it may be the only key that decrypts "
            "your secrets), or pass another --output"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create the key file ({exc.strerror}); check the folder") from None
    try:
        os.fchmod(fd, 0o600)  # exact mode whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise KeyFileError(f"{path}: cannot write the key file ({exc.strerror})") from None
    return recipient
