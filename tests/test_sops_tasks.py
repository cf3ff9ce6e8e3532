"""The `doit secrets_*` commands, with the real sops binary and real age keys.

Each command is called as the doit layer calls it, `(project, **params) -> str`; what is
checked is what a user would check: the files written, their modes, what `sops` decrypts
them to, and that no output line carries a secret (only `secrets_decrypt` prints one).
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
import yaml
from test_sops_support import (
    CANARY,
    AgeKeys,
    make_keys,
    project_at,
    root_password_ref,
    sops_project,
    write_config,
    write_rules,
)

from stagegraph.errors import SecretError
from stagegraph.sops import tasks
from stagegraph.sops.errors import SecretCheckError
from stagegraph.sops.files import ciphertext_digest, file_format, is_encrypted
from stagegraph.sops.run import project_sops
from stagegraph.sops.store import SecretStore


@pytest.fixture
def root(tmp_path: Path, keys: AgeKeys) -> Path:
    return sops_project(tmp_path / "project", keys)


def decrypt(root: Path, label: str, key: str) -> str:
    """What the real sops decrypts `key` of `label` to, through a fresh store."""
    return SecretStore().value(project_sops(root), label, key)


class TtyIn(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- keygen ---------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_for_the_owner_only_and_prints_only_the_public_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_keys(monkeypatch, tmp_path / "home")
    root = tmp_path / "p"
    write_config(root)
    target = tmp_path / "new" / "keys.txt"
    out = tasks.secrets_keygen(project_at(root), output=str(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    private = next(line for line in target.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))
    assert private not in out and "AGE-SECRET-KEY" not in out
    public = next(line.split()[-1] for line in out.splitlines() if line.startswith("public key:"))
    assert public.startswith("age1")
    # The new key is in a rule, and sops encrypts for it and decrypts with it.
    rules = yaml.safe_load((root / "secrets" / ".sops.yaml").read_text())
    assert rules["creation_rules"][0]["age"] == public
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(target))
    tasks.secrets_encrypt(project_at(root), name="app", key="token", value=CANARY)
    assert decrypt(root, "secrets/app.enc.yaml", "token") == CANARY


def test_keygen_never_overwrites_an_existing_key(root: Path, keys: AgeKeys) -> None:
    before = keys.mine.read_bytes()
    with pytest.raises(SecretError) as caught:
        tasks.secrets_keygen(project_at(root))  # SOPS_AGE_KEY_FILE is the existing key
    assert str(caught.value).startswith(f"{keys.mine}: an age key file exists already")
    assert keys.mine.read_bytes() == before


def test_keygen_leaves_existing_rules_alone_and_says_so(root: Path, tmp_path: Path) -> None:
    before = (root / "secrets" / ".sops.yaml").read_text()
    out = tasks.secrets_keygen(project_at(root), output=str(tmp_path / "k2.txt"))
    assert "has rules already and none lists" in out and "doit secrets_update_keys" in out
    assert (root / "secrets" / ".sops.yaml").read_text() == before


# --- encrypt / decrypt ------------------------------------------------------------------------


def test_encrypt_from_env_file_and_stdin_keeps_no_plaintext_on_disk(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_at(root)
    monkeypatch.setenv("MY_TOKEN", CANARY + "-env")
    out = tasks.secrets_encrypt(project, name="app", key="s3.token", from_env="MY_TOKEN")
    assert out == (
        "secrets/app.enc.yaml: encrypted 's3.token'; refer to it in the config as "
        "{sops: secrets/app.enc.yaml, key: s3.token}"
    )
    value_file = tmp_path / "cert.pem"
    value_file.write_text(CANARY + "-file\n")
    tasks.secrets_encrypt(project, name="app", key="tls.cert", file=str(value_file))
    tasks.secrets_encrypt(project, name="app", key="db", stdin=io.StringIO(CANARY + "-stdin\n"))
    data = (root / "secrets" / "app.enc.yaml").read_bytes()
    assert is_encrypted(data, "yaml") and CANARY.encode() not in data
    assert decrypt(root, "secrets/app.enc.yaml", "s3.token") == CANARY + "-env"
    assert decrypt(root, "secrets/app.enc.yaml", "tls.cert") == CANARY + "-file\n"  # files as they are
    assert decrypt(root, "secrets/app.enc.yaml", "db") == CANARY + "-stdin"  # echo's newline dropped
    assert CANARY not in out
    # Only ciphertext ever existed under secrets/ (no temp file left either).
    for path in (root / "secrets").rglob("*"):
        assert CANARY.encode() not in path.read_bytes(), path


def test_value_on_the_command_line_works_but_warns(root: Path) -> None:
    out = tasks.secrets_encrypt(project_at(root), name="app", value=CANARY)
    assert out.splitlines()[0].startswith("warning: --value shows the secret in `ps`")
    assert CANARY not in out
    assert decrypt(root, "secrets/app.enc.yaml", "value") == CANARY


def test_setting_one_key_keeps_the_ciphertext_of_the_others(root: Path) -> None:
    project = project_at(root)
    tasks.secrets_encrypt(project, name="app", key="a", value="first-value")
    tasks.secrets_encrypt(project, name="app", key="b", value="second-value")
    path = root / "secrets" / "app.enc.yaml"
    a_before, b_before = ciphertext_digest(path, "a"), ciphertext_digest(path, "b")
    tasks.secrets_encrypt(project, name="app", key="b", value="changed-value")
    assert ciphertext_digest(path, "a") == a_before
    assert ciphertext_digest(path, "b") != b_before
    assert decrypt(root, "secrets/app.enc.yaml", "b") == "changed-value"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"key": "k", "value": "v"}, "--name is required"),
        (
            {"name": "app", "stdin": TtyIn()},
            "no value: give --from-env VAR or --file PATH, or pipe the value on stdin",
        ),
        (
            {"name": "app", "value": "v", "from_env": "HOME"},
            "give one of --from-env, --file, --value (got --from-env, --value)",
        ),
        (
            {"name": "app", "from_env": "NOT_SET_ANYWHERE_42"},
            "--from-env NOT_SET_ANYWHERE_42: no such environment variable",
        ),
        (
            {"name": "app", "stdin": io.StringIO("")},
            "secrets/app.enc.yaml: refusing to encrypt an empty value",
        ),
        ({"name": "app", "key": "a..b", "value": "v"}, "--key 'a..b': should be a dotted key"),
        ({"name": "../etc/x", "value": "v"}, "--name '../etc/x': give a short name"),
        ({"name": "notes.txt", "value": "v"}, "secrets/notes.txt.enc.yaml"),  # suffix added: allowed
    ],
)
def test_encrypt_refuses_bad_input_with_one_line(root: Path, params: dict[str, object], message: str) -> None:
    if message.endswith(".enc.yaml"):
        tasks.secrets_encrypt(project_at(root), **params)  # type: ignore[arg-type]
        assert (root / message).exists()
        return
    with pytest.raises(SecretError) as caught:
        tasks.secrets_encrypt(project_at(root), **params)  # type: ignore[arg-type]
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_encrypt_into_a_file_no_rule_covers_names_the_rules_file(root: Path) -> None:
    with pytest.raises(SecretError) as caught:
        tasks.secrets_encrypt(project_at(root), name="secrets/plain.yaml", value="v")
    assert str(caught.value).startswith(
        "secrets/plain.yaml: no creation rule in secrets/.sops.yaml matches it"
    )
    assert not (root / "secrets" / "plain.yaml").exists()


def test_decrypt_prints_the_value_and_without_a_key_lists_key_names_only(root: Path) -> None:
    project = project_at(root)
    tasks.secrets_encrypt(project, name="app", key="s3.token", value=CANARY)
    tasks.secrets_encrypt(project, name="app", key="other", value="x-other")
    assert tasks.secrets_decrypt(project, name="app", key="s3.token") == CANARY
    listing = tasks.secrets_decrypt(project, name="app")
    assert listing.splitlines() == [
        "secrets/app.enc.yaml: keys (pass one with --key to print its value):",
        "s3.token",
        "other",
    ]
    assert CANARY not in listing


# --- rotate / update keys -----------------------------------------------------------------------


def test_rotate_reencrypts_every_value_with_a_new_data_key(root: Path) -> None:
    project = project_at(root)
    tasks.secrets_encrypt(project, name="app", key="a", value=CANARY)
    tasks.secrets_encrypt(project, name="db", key="b", value="db-secret")
    before = {n: (root / "secrets" / f"{n}.enc.yaml").read_bytes() for n in ("app", "db")}
    out = tasks.secrets_rotate(project)
    assert out.splitlines()[:2] == [
        "secrets/app.enc.yaml: new data key, every value re-encrypted",
        "secrets/db.enc.yaml: new data key, every value re-encrypted",
    ]
    for name, data in before.items():
        path = root / "secrets" / f"{name}.enc.yaml"
        old_key = yaml.safe_load(data)["sops"]["age"][0]["enc"]
        assert yaml.safe_load(path.read_bytes())["sops"]["age"][0]["enc"] != old_key
    assert decrypt(root, "secrets/app.enc.yaml", "a") == CANARY
    tasks.secrets_rotate(project, name="app")  # one file only
    assert decrypt(root, "secrets/app.enc.yaml", "a") == CANARY


def test_update_keys_adds_a_new_recipient_without_touching_values(
    root: Path, keys: AgeKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_at(root)
    tasks.secrets_encrypt(project, name="app", key="a", value=CANARY)
    path = root / "secrets" / "app.enc.yaml"
    value_ct = ciphertext_digest(path, "a")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys.other))
    with pytest.raises(SecretError, match="not one of the file's recipients"):
        decrypt(root, "secrets/app.enc.yaml", "a")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys.mine))
    write_rules(root, keys.mine_public, keys.other_public)
    assert tasks.secrets_update_keys(project) == "secrets/app.enc.yaml: recipients updated"
    assert tasks.secrets_update_keys(project) == "secrets/app.enc.yaml: already up to date"
    assert ciphertext_digest(path, "a") == value_ct  # no stage re-applies for this
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys.other))
    assert decrypt(root, "secrets/app.enc.yaml", "a") == CANARY


# --- check ------------------------------------------------------------------------------------------


def test_check_passes_without_any_key_and_reads_only_ciphertext(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks.secrets_encrypt(project_at(root), name="keycloak", key="keycloak.root_password", value=CANARY)
    write_config(
        root,
        **root_password_ref(),
    )
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", "/nonexistent/keys.txt")
    out = tasks.secrets_check(project_at(root))
    assert (
        out
        == "secrets: 1 file(s) under secrets/ checked, 1 reference(s) in nebari-config.yaml found; no plaintext secret"
    )


def test_check_lists_every_problem_one_line_each(root: Path) -> None:
    tasks.secrets_encrypt(project_at(root), name="keycloak", key="keycloak.root_password", value="x")
    (root / "secrets" / "leaked.enc.yaml").write_text(f"token: {CANARY}\n")
    (root / "secrets" / "README.md").write_text("not a secret\n")
    write_config(
        root,
        security={
            "authentication": {"type": "GitHub", "config": {"client_id": "id", "client_secret": CANARY}},
            "keycloak": {
                "initial_root_password": {"sops": "secrets/keycloak.enc.yaml", "key": "keycloak.nope"}
            },
        },
        secrets=[
            {
                "name": "tok",
                "type": "env",
                "sops": "secrets/missing.enc.yaml",
                "key": "t",
                "groups": ["admin"],
            }
        ],
    )
    with pytest.raises(SecretCheckError) as caught:
        tasks.secrets_check(project_at(root))
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "secrets/leaked.enc.yaml",
        "nebari-config.yaml",
        "nebari-config.yaml",
        "secrets/missing.enc.yaml",
    ]
    assert "is not encrypted" in problems[0]
    assert "security.authentication.config.client_secret: holds a plaintext secret" in problems[1]
    assert "key 'keycloak.nope' not found in secrets/keycloak.enc.yaml" in problems[2]
    assert "not found (named by nebari-config.yaml: secrets.0)" in problems[3]
    assert all(CANARY not in p for p in problems)


# --- move ---------------------------------------------------------------------------------------------


def test_move_encrypts_plaintext_config_secrets_and_rewrites_the_config_keeping_comments(root: Path) -> None:
    config = root / "nebari-config.yaml"
    config.write_text(
        "# my deployment\n"
        "project_name: demo  # short\n"
        "provider: sandbox\n"
        "security:\n"
        "  keycloak:\n"
        "    # set once at the first deploy\n"
        f"    initial_root_password: {CANARY}\n"
        "    realm_display_name: Demo\n"
        "external_container_reg:\n"
        "  enabled: true\n"
        "  access_key_id: AKIA1\n"
        f"  secret_access_key: {CANARY}-aws\n"
        "  extcr_account: '1'\n"
        "  extcr_region: us-east-1\n"
    )
    os.chmod(config, 0o600)
    project = project_at(root)
    out = tasks.secrets_move(project)
    assert CANARY not in out
    text = config.read_text()
    assert CANARY not in text
    assert "# my deployment" in text and "# short" in text and "# set once at the first deploy" in text
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    after = project_at(root).config
    ref = after.security.keycloak.initial_root_password
    assert ref is not None and not hasattr(ref, "get_secret_value")
    assert (
        decrypt(root, "secrets/nebari-config.enc.yaml", "security.keycloak.initial_root_password") == CANARY
    )
    assert (
        decrypt(root, "secrets/nebari-config.enc.yaml", "external_container_reg.secret_access_key")
        == CANARY + "-aws"
    )
    assert tasks.secrets_check(project_at(root)).endswith("no plaintext secret")
    assert tasks.secrets_move(project_at(root)) == "nebari-config.yaml: no plaintext secret; nothing to move"


def test_plaintext_warnings_name_each_field_and_the_command(root: Path) -> None:
    from stagegraph.sops.plaintext import plaintext_warnings

    write_config(root, security={"keycloak": {"initial_root_password": CANARY}})
    warnings = plaintext_warnings(project_at(root).config, "nebari-config.yaml")
    assert warnings == [
        "warning: nebari-config.yaml: security.keycloak.initial_root_password: holds a plaintext secret; "
        "move it into secrets/ with `doit secrets_move` (the config then refers to the encrypted file)"
    ]


def test_commands_table_matches_the_functions() -> None:
    names = [c.name for c in tasks.COMMANDS]
    assert names == [
        "secrets_keygen",
        "secrets_encrypt",
        "secrets_decrypt",
        "secrets_rotate",
        "secrets_update_keys",
        "secrets_check",
        "secrets_move",
    ]
    import inspect

    for command in tasks.COMMANDS:
        accepted = set(inspect.signature(command.run).parameters)
        assert {p["name"] for p in command.params} <= accepted, command.name
        assert file_format("x.enc.yaml") == "yaml"
