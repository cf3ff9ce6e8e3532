"""Every way a secret can fail, each a one-line `SecretError` naming the file and the fix.

No message ever carries a decrypted value, nor sops's own stderr: sops may quote the
content of a file it could not parse, and that content may be a plaintext secret. Messages
are built from what we know (the file, the key, the exit code) and a fixed explanation.
"""

from __future__ import annotations

from stagegraph.errors import SecretError

KEYGEN_HINT = "set SOPS_AGE_KEY_FILE to your age key file, or create a key with `doit secrets_keygen`"
RESTORE_HINT = (
    "restore it from git (git checkout -- {file}) or encrypt the secret again with `doit secrets_encrypt`"
)


class SopsNotFoundError(SecretError):
    """No usable sops binary."""


class SopsFailedError(SecretError):
    """sops failed for a reason we have no specific message for."""


class NoKeyError(SecretError):
    """No age identity (or other master key) is available to decrypt a file."""


class MissingKeyFileError(NoKeyError):
    """SOPS_AGE_KEY_FILE names a file that does not exist."""


class WrongKeyError(SecretError):
    """The available keys are not among the file's recipients."""


class TamperedError(SecretError):
    """A value's ciphertext was changed or corrupted (sops exit 25, or a crash on it)."""


class MacMismatchError(SecretError):
    """The file's MAC does not match its content (sops exit 51): it was edited outside sops."""


class NotEncryptedError(SecretError):
    """A plaintext file where a SOPS-encrypted one is expected."""


class SecretFileMissingError(SecretError):
    """A secret file named in the config does not exist."""


class SecretKeyMissingError(SecretError):
    """A secret file exists but does not hold the key the config names."""


class SecretValueError(SecretError):
    """A key exists but its value is not a single string (a mapping, a list...)."""


class RulesError(SecretError):
    """secrets/.sops.yaml is missing, unreadable, or no creation rule matches a file."""


class SecretCheckError(SecretError):
    """`doit secrets_check` found problems; one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
