"""The `doit secrets_*` commands: each a function `(project, **params) -> str` plus its params.

    doit secrets_keygen [--output PATH]
        Create an age key pair (pyrage; no age binary needed). The private key goes to the
        file sops reads (SOPS_AGE_KEY_FILE, else ~/.config/sops/age/keys.txt) or --output,
        mode 0600, never overwritten and never printed; the public recipient is printed,
        and secrets/.sops.yaml gets a rule for it when it has none.
    doit secrets_encrypt --name NAME [--key KEY] (--from-env VAR | --file PATH | --value V)
        Encrypt one secret under a name: secrets/NAME.enc.yaml (or a path inside secrets/),
        at the dotted KEY (default "value"). The value comes from an environment variable,
        a file, or stdin when none is given (`pass show x | doit secrets_encrypt --name x`);
        --value works but warns, since the command line shows in `ps` and shell history.
        Other keys of an existing file keep their ciphertext.
    doit secrets_decrypt --name NAME --key KEY
        Print one decrypted value to stdout: the one command that shows a secret, on
        request. Without --key, list the keys of the file (names only).
    doit secrets_rotate [--name NAME]
        New data key for one file or every encrypted file under secrets/ (`sops rotate`).
        Their ciphertext changes, so the stages that read them re-apply on the next deploy.
    doit secrets_update_keys [--name NAME]
        Re-encrypt the data key for the recipients secrets/.sops.yaml now names
        (`sops updatekeys`): after adding or removing a person's key. Values and their
        ciphertext stay as they are; no stage re-applies.
    doit secrets_check
        Fails (one line per problem) when a file under secrets/ that a creation rule covers
        is not encrypted, when the config holds a plaintext secret, or when a secret the
        config names is missing (file or key). Needs no key: it reads the ciphertext only.
    doit secrets_move [--file secrets/nebari-config.enc.yaml]
        Move every plaintext secret of the config into one encrypted file and rewrite the
        config to refer to it (comments kept).

The doit layer (`stagegraph.tasks`) wires each entry of `COMMANDS` as `doit <name>` with
its params, prints the returned text, and turns a `StagegraphError` into one line.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from stagegraph.errors import SecretError
from stagegraph.schema.secret import SECRET_KEY_RE
from stagegraph.sops.errors import SecretCheckError

if TYPE_CHECKING:
    from stagegraph.project import Project
    from stagegraph.sops.run import Sops

Param = dict[str, Any]
DEFAULT_KEY = "value"


def _param(name: str, help_: str, default: Any = "", long: str | None = None) -> Param:
    return {
        "name": name,
        "long": long or name.replace("_", "-"),
        "default": default,
        "type": type(default),
        "help": help_,
    }


KEYGEN_PARAMS = [
    _param("output", "write the private key here (default: SOPS_AGE_KEY_FILE, else sops's keys.txt)")
]
ENCRYPT_PARAMS = [
    _param("name", "secret file: a short name (secrets/NAME.enc.yaml) or a path inside secrets/"),
    _param("key", "dotted key inside the file", DEFAULT_KEY),
    _param("from_env", "read the value from this environment variable"),
    _param("file", "read the value from this file"),
    _param("value", "the value itself (shows in `ps` and shell history: prefer --from-env or stdin)"),
]
DECRYPT_PARAMS = [
    _param("name", "secret file: a short name or a path inside secrets/"),
    _param("key", "dotted key to print (empty: list the keys)"),
]
ROTATE_PARAMS = [_param("name", "only this file (default: every encrypted file under secrets/)")]
UPDATE_KEYS_PARAMS = [_param("name", "only this file (default: every encrypted file under secrets/)")]
CHECK_PARAMS: list[Param] = []
MOVE_PARAMS = [
    _param("file", "the encrypted file to move the secrets into", "secrets/nebari-config.enc.yaml")
]


def _sops(project: Project, environ: Mapping[str, str] | None = None) -> Sops:
    from stagegraph.sops.run import project_sops

    # The raw YAML, not the validated config: these commands must work while the config
    # is broken (a plaintext secret removed by hand, a reference to a file not made yet).
    tool = project.raw_config.get("stagegraph")
    sops_section = tool.get("sops") if isinstance(tool, dict) else None
    binary = sops_section.get("binary") if isinstance(sops_section, dict) else None
    return project_sops(project.root, binary if isinstance(binary, str) else "auto", environ)


# --- keygen -------------------------------------------------------------------------------


def secrets_keygen(project: Project, output: str = "", environ: Mapping[str, str] | None = None) -> str:
    from stagegraph.sops.keys import generate_key, key_file
    from stagegraph.sops.rules import add_age_rule

    path = Path(output).expanduser() if output else key_file(environ)
    recipient = generate_key(path)
    lines = [
        f"{path}: new age key, readable by you only; back it up: it is what decrypts your secrets",
        f"public key: {recipient}",
    ]
    lines.append(add_age_rule(project.root, recipient))
    if output:
        lines.append(f"point sops at it: export SOPS_AGE_KEY_FILE={path}")
    return "\n".join(lines)


# --- encrypt / decrypt --------------------------------------------------------------------


def secrets_encrypt(
    project: Project,
    name: str = "",
    key: str = DEFAULT_KEY,
    from_env: str = "",
    file: str = "",
    value: str = "",
    *,
    stdin: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    from stagegraph.sops.writing import put_values, secret_label

    env = os.environ if environ is None else environ
    label = secret_label(_required(name, "--name"))
    key = key or DEFAULT_KEY
    if re.match(SECRET_KEY_RE, key) is None:
        raise SecretError(f"--key {key!r}: should be a dotted key such as keycloak.root_password")
    given = [flag for flag, v in (("--from-env", from_env), ("--file", file), ("--value", value)) if v]
    if len(given) > 1:
        raise SecretError(f"give one of --from-env, --file, --value (got {', '.join(given)})")
    lines = []
    if from_env:
        if from_env not in env:
            raise SecretError(f"--from-env {from_env}: no such environment variable; export it first")
        secret = env[from_env]
    elif file:
        secret = _read_value_file(Path(file))
    elif value:
        lines.append(
            "warning: --value shows the secret in `ps` and your shell history; prefer --from-env VAR or stdin"
        )
        secret = value
    else:
        stream = sys.stdin if stdin is None else stdin
        if stream is None or stream.isatty():
            raise SecretError("no value: give --from-env VAR or --file PATH, or pipe the value on stdin")
        secret = stream.read()
        secret = secret[:-1] if secret.endswith("\n") else secret  # `echo x |` adds one
    if not secret:
        raise SecretError(f"{label}: refusing to encrypt an empty value for {key!r}")
    put_values(_sops(project, environ), label, {key: secret})
    lines.append(f"{label}: encrypted {key!r}; refer to it in the config as {{sops: {label}, key: {key}}}")
    return "\n".join(lines)


def _read_value_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretError(f"--file {path}: not found") from None
    except UnicodeDecodeError:
        raise SecretError(f"--file {path}: not UTF-8 text; base64-encode binary secrets first") from None
    except OSError as exc:
        raise SecretError(f"--file {path}: cannot read it ({exc.strerror})") from None


def secrets_decrypt(
    project: Project, name: str = "", key: str = "", environ: Mapping[str, str] | None = None
) -> str:
    from stagegraph.sops.store import STORE, ciphertext_keys
    from stagegraph.sops.writing import secret_label

    label = secret_label(_required(name, "--name"))
    if not key:
        keys = ciphertext_keys(project.root / label, label)
        return "\n".join([f"{label}: keys (pass one with --key to print its value):", *keys])
    return STORE.value(_sops(project, environ), label, key)


# --- rotate / update keys -------------------------------------------------------------------


def _encrypted_files(project: Project, name: str) -> list[str]:
    from stagegraph.sops.files import file_format, is_encrypted
    from stagegraph.sops.rules import secret_files
    from stagegraph.sops.store import read_ciphertext
    from stagegraph.sops.writing import secret_label

    if name:
        label = secret_label(name)
        read_ciphertext(project.root / label, label)
        return [label]
    found = [
        label
        for label in secret_files(project.root)
        if is_encrypted((project.root / label).read_bytes(), file_format(label))
    ]
    if not found:
        raise SecretError("secrets/: no encrypted file; create one with `doit secrets_encrypt`")
    return found


def secrets_rotate(project: Project, name: str = "", environ: Mapping[str, str] | None = None) -> str:
    from stagegraph.sops.rules import rules_path

    sops = _sops(project, environ)
    files = _encrypted_files(project, name)
    for label in files:
        sops.rotate(rules_path(project.root), label)
    return "\n".join(
        [*(f"{label}: new data key, every value re-encrypted" for label in files),
         "the stages that read these secrets re-apply on the next deploy (their ciphertext changed)"]
    )  # fmt: skip


def secrets_update_keys(project: Project, name: str = "", environ: Mapping[str, str] | None = None) -> str:
    from stagegraph.sops.rules import load_rules, rule_for, rules_path

    sops = _sops(project, environ)
    rules = load_rules(project.root)
    lines = []
    for label in _encrypted_files(project, name):
        if rule_for(rules, label) is None:
            lines.append(f"{label}: no creation rule matches it; skipped")
            continue
        report = sops.update_keys(rules_path(project.root), label)
        state = "already up to date" if "already up to date" in report else "recipients updated"
        lines.append(f"{label}: {state}")
    return "\n".join(lines)


# --- check / move -----------------------------------------------------------------------------


def secrets_check(project: Project) -> str:
    """Raise `SecretCheckError` listing every problem; return a summary when there is none."""
    from stagegraph.errors import StagegraphError
    from stagegraph.sops.plaintext import plaintext_warnings
    from stagegraph.sops.rules import RULES_FILE, check_files, rules_path, secret_files

    problems: list[str] = []
    files = list(secret_files(project.root))
    if rules_path(project.root).exists():
        try:
            problems += check_files(project.root)
        except StagegraphError as exc:
            problems.append(str(exc))
    elif files:
        problems.append(
            f"{RULES_FILE}: not found, but secrets/ holds files; create it with `doit secrets_keygen`"
        )
    config = project.config
    problems += [w.removeprefix("warning: ") for w in plaintext_warnings(config, project.config_name)]
    refs = config_references(config)
    for where, label, key in refs:
        problems += _reference_problems(project.root, f"{project.config_name}: {where}", label, key)
    if problems:
        raise SecretCheckError(problems)
    return f"secrets: {len(files)} file(s) under secrets/ checked, {len(refs)} reference(s) in {project.config_name} found; no plaintext secret"


def config_references(config: Any) -> list[tuple[str, str, str]]:
    """(config path, file, key) of every encrypted secret the config names."""
    from stagegraph.schema.secret import SecretRef, secret_fields

    refs = [
        (path, value.sops, value.key) for path, value in secret_fields(config) if isinstance(value, SecretRef)
    ]
    refs += [
        (f"secrets.{i}", entry.sops, entry.key)
        for i, entry in enumerate(getattr(config, "secrets", []) or [])
    ]
    return refs


def _reference_problems(root: Path, where: str, label: str, key: str) -> list[str]:
    from stagegraph.sops.files import file_format, has_key, parse_tree
    from stagegraph.sops.store import read_ciphertext

    try:
        data = read_ciphertext(root / label, label, where)
    except SecretError as exc:
        return [str(exc)]
    tree = parse_tree(data, file_format(label))
    if tree is not None and not has_key(tree, key):
        return [
            f"{where}: key {key!r} not found in {label}; add it with `doit secrets_encrypt --name {label} --key {key} --from-env VAR`"
        ]
    return []


def secrets_move(
    project: Project, file: str = MOVE_PARAMS[0]["default"], environ: Mapping[str, str] | None = None
) -> str:
    from stagegraph.sops.plaintext import move_plaintext

    sops = _sops(project, environ)
    lines = move_plaintext(project.config_path, project.config, project.config_name, sops, file)
    return "\n".join(lines)


def _required(value: str, flag: str) -> str:
    if not value:
        raise SecretError(f"{flag} is required (see `doit help` for the command)")
    return value


# --- the table the doit layer wires -------------------------------------------------------------


@dataclass(frozen=True)
class SecretsCommand:
    name: str
    doc: str
    params: list[Param]
    run: Callable[..., str]


COMMANDS: tuple[SecretsCommand, ...] = (
    SecretsCommand(
        "secrets_keygen",
        "Create an age key pair; print the public key (never the private one)",
        KEYGEN_PARAMS,
        secrets_keygen,
    ),
    SecretsCommand(
        "secrets_encrypt",
        "Encrypt a secret into secrets/ (--name, --key, --from-env/--file/stdin)",
        ENCRYPT_PARAMS,
        secrets_encrypt,
    ),
    SecretsCommand(
        "secrets_decrypt",
        "Print one decrypted secret (--name, --key) to stdout",
        DECRYPT_PARAMS,
        secrets_decrypt,
    ),
    SecretsCommand(
        "secrets_rotate",
        "New data key for the encrypted files under secrets/ (--name)",
        ROTATE_PARAMS,
        secrets_rotate,
    ),
    SecretsCommand(
        "secrets_update_keys",
        "Re-encrypt for the recipients secrets/.sops.yaml now names (--name)",
        UPDATE_KEYS_PARAMS,
        secrets_update_keys,
    ),
    SecretsCommand(
        "secrets_check",
        "Fail on unencrypted secret files, plaintext config secrets, missing secrets",
        CHECK_PARAMS,
        secrets_check,
    ),
    SecretsCommand(
        "secrets_move",
        "Move plaintext config secrets into secrets/ and refer to them (--file)",
        MOVE_PARAMS,
        secrets_move,
    ),
)
