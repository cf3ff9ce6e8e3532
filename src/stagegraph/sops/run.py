"""Run sops: decrypt to memory, encrypt from memory, and turn failures into one line.

Plaintext only ever travels through pipes: a decrypt reads the ciphertext on stdin and
writes JSON to a stdout pipe we parse in memory; an encrypt reads plaintext JSON on stdin
and writes ciphertext to a pipe we then save; `sops set --value-stdin` keeps a new value
off the command line (where `ps` would show it). No temp file holds a plaintext, no log
line or exception carries one, and sops's stderr is parsed but never repeated (it may
quote the file it failed on).

Failures, as measured with sops 3.11: no key or a wrong key exit 128 ("identity did not
match any of the recipients", "failed to open SOPS_AGE_KEY_FILE file"), a changed value
25 (or a crash, exit 2, when its type tag was changed), a MAC that no longer matches 51,
a plaintext file 1 ("sops metadata not found").
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagegraph.sops.binary import KEY_FILE_VAR, SopsBinary
from stagegraph.sops.errors import (
    KEYGEN_HINT,
    RESTORE_HINT,
    MacMismatchError,
    MissingKeyFileError,
    NoKeyError,
    NotEncryptedError,
    RulesError,
    SopsFailedError,
    TamperedError,
    WrongKeyError,
)
from stagegraph.sops.files import Format, file_format

#: A decrypt that needs a cloud KMS may wait on the network; never forever.
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Sops:
    """sops, run in the project root with the caller's environment (plus SOPS_ENV)."""

    binary: SopsBinary
    cwd: Path
    environ: Mapping[str, str] | None = None

    # --- commands ---------------------------------------------------------------------

    def decrypt(self, label: str, ciphertext: bytes) -> dict[str, Any]:
        """The decrypted document of `ciphertext` (read from `label`) as data, in memory."""
        fmt = file_format(label)
        args = ["decrypt", "--input-type", fmt, "--output-type", "json", "--filename-override", label]
        out = self._run(args, label, stdin=ciphertext)
        try:
            tree = json.loads(out)
        except ValueError:
            raise SopsFailedError(
                f"{label}: sops returned output that is not JSON; check the file with `doit secrets_check`"
            ) from None
        if not isinstance(tree, dict):
            raise SopsFailedError(
                f"{label}: the decrypted file is not a mapping of keys; re-encrypt it with `doit secrets_encrypt`"
            )
        return tree

    def encrypt(self, config: Path, label: str, document: Mapping[str, Any]) -> bytes:
        """Ciphertext of a new file `label` holding `document`, by the creation rules in `config`."""
        fmt: Format = file_format(label)
        if fmt not in ("yaml", "json"):
            raise RulesError(
                f"{label}: new secret files must be .yaml or .json; pick a name ending in .enc.yaml"
            )
        args = [
            "--config", str(config), "encrypt",
            "--input-type", "json", "--output-type", fmt,
            "--filename-override", label,
        ]  # fmt: skip
        return self._run(args, label, stdin=json.dumps(document).encode())

    def set_value(self, label: str, key: str, value: str) -> None:
        """Set one key of an existing file in place; other values keep their ciphertext."""
        index = "".join(f"[{json.dumps(part)}]" for part in key.split("."))
        self._run(["set", "--value-stdin", label, index], label, stdin=json.dumps(value).encode())

    def rotate(self, config: Path, label: str) -> None:
        """A new data key for the file, every value re-encrypted with it (in place)."""
        self._run(["--config", str(config), "rotate", "-i", label], label)

    def update_keys(self, config: Path, label: str) -> str:
        """Re-wrap the data key for the recipients the creation rules now name; sops's summary."""
        out = self._run(["--config", str(config), "updatekeys", "-y", label], label, keep_stderr=True)
        return out.decode("utf-8", "replace")

    # --- plumbing -----------------------------------------------------------------------

    def _run(
        self, args: Sequence[str], label: str, *, stdin: bytes | None = None, keep_stderr: bool = False
    ) -> bytes:
        env = self.binary.env(self.environ)
        key_file = env.get(KEY_FILE_VAR)
        if key_file and not Path(key_file).expanduser().is_file():
            # sops 3.11 skips a named file that is missing and carries on with other keys.
            raise MissingKeyFileError(
                f"{label}: cannot decrypt: {KEY_FILE_VAR} points to {key_file}, which does not exist; "
                "point it at your age key file, unset it, or create a key with `doit secrets_keygen`"
            )
        try:
            proc = subprocess.run(
                [self.binary.path, *args],
                cwd=self.cwd,
                env=env,
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SopsFailedError(
                f"{label}: sops did not finish within {TIMEOUT_S:.0f} s (waiting on a KMS or a GPG agent?); "
                "check your cloud credentials or agent"
            ) from None
        except OSError as exc:
            raise SopsFailedError(
                f"{label}: cannot run sops at {self.binary.path} ({exc.strerror}); check stagegraph.sops.binary"
            ) from None
        if proc.returncode != 0:
            raise classify(proc.returncode, proc.stderr.decode("utf-8", "replace"), label, env)
        # updatekeys reports what it did on stderr (recipient names, never values).
        return proc.stderr if keep_stderr else proc.stdout


def classify(code: int, stderr: str, label: str, env: Mapping[str, str]) -> Exception:
    """The one-line error for a failed sops run; never quotes stderr."""
    restore = RESTORE_HINT.format(file=label)
    if "failed to open SOPS_AGE_KEY_FILE" in stderr:
        key_file = env.get("SOPS_AGE_KEY_FILE", "")
        return MissingKeyFileError(
            f"{label}: cannot decrypt: SOPS_AGE_KEY_FILE points to {key_file}, which does not exist; "
            f"point it at your age key file, or create a key with `doit secrets_keygen`"
        )
    if (
        "identity did not match any of the recipients" in stderr
        or "no identity matched any of the recipients" in stderr
    ):
        return WrongKeyError(
            f"{label}: cannot decrypt: your age key is not one of the file's recipients; {_key_source(env)}; "
            "use the right key, or have someone who can decrypt it add your public key to "
            "secrets/.sops.yaml and run `doit secrets_update_keys`"
        )
    if code == 128 or "Failed to get the data key" in stderr:
        if "failed to load age identities" in stderr or "Did not find keys" in stderr:
            return NoKeyError(f"{label}: cannot decrypt: no age key found; {KEYGEN_HINT}")
        return NoKeyError(
            f"{label}: cannot decrypt: none of its master keys is usable here (age, PGP or cloud KMS); "
            "check SOPS_AGE_KEY_FILE, your GPG agent or your cloud credentials"
        )
    if code == 51 or "MAC mismatch" in stderr:
        return MacMismatchError(f"{label}: MAC mismatch: the file was changed outside sops; {restore}")
    # A crash inside the cipher code: a value's type tag was edited (seen with sops 3.11).
    cipher_crash = stderr.startswith("panic:") and "sops/v3/aes." in stderr
    if code in (23, 24, 25) or "message authentication failed" in stderr or cipher_crash:
        return TamperedError(
            f"{label}: a value does not decrypt: its ciphertext was changed or is corrupt; {restore}"
        )
    if "sops metadata not found" in stderr:
        return NotEncryptedError(
            f"{label}: not encrypted (no sops metadata): a plaintext file where a SOPS file is expected; "
            "encrypt the secret with `doit secrets_encrypt` and remove the plaintext from git"
        )
    if "no matching creation rules found" in stderr:
        return RulesError(
            f"{label}: no creation rule in secrets/.sops.yaml matches this file; add one (see docs/secrets.md)"
        )
    if code == 203 or "already encrypted" in stderr or "contains a top-level entry called 'sops'" in stderr:
        return SopsFailedError(f"{label}: already encrypted; use `doit secrets_encrypt` to set a key in it")
    if "error loading config" in stderr or code == 5:
        return RulesError(f"{label}: sops cannot read secrets/.sops.yaml; check it with `doit secrets_check`")
    if stderr.startswith("panic:"):
        return SopsFailedError(
            f"{label}: sops crashed (exit {code}); check the SOPS_* variables of your environment "
            "and the file with `doit secrets_check`"
        )
    return SopsFailedError(f"{label}: sops failed (exit {code}); check the file with `doit secrets_check`")


def _key_source(env: Mapping[str, str]) -> str:
    if env.get("SOPS_AGE_KEY"):
        return "tried the key in SOPS_AGE_KEY"
    if env.get("SOPS_AGE_KEY_FILE"):
        return f"tried SOPS_AGE_KEY_FILE={env['SOPS_AGE_KEY_FILE']}"
    from stagegraph.sops.keys import default_key_file

    return f"tried {default_key_file(env)}"


def project_sops(root: Path, preference: str = "auto", environ: Mapping[str, str] | None = None) -> Sops:
    """The sops to use for the project at `root`."""
    from stagegraph.sops.binary import find_sops

    return Sops(find_sops(preference), root, os.environ if environ is None else environ)
