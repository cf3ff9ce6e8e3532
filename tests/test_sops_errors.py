"""Bad input meets one line naming the file and what to do, never the secret.

Every case runs the real sops on a real encrypted file, through the path a deploy takes:
`resolve_secret` on a config field that refers to the file. The checks: the error class,
a single line, the file (and the config field) named, a next step, and no plaintext.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from test_sops_support import (
    CANARY,
    FIELD,
    FILE,
    AgeKeys,
    keycloak_project,
    project_at,
    root_password_ref,
    write_config,
)

from stagegraph.errors import SecretError
from stagegraph.secretvalues import resolve_secret
from stagegraph.sops import errors as E
from stagegraph.sops.preflight import check_stage_secrets
from stagegraph.sops.store import STORE
from stagegraph.sops.tasks import secrets_encrypt


@pytest.fixture
def root(tmp_path: Path, keys: AgeKeys) -> Path:
    return keycloak_project(tmp_path / "project", keys, other="other-value")


def resolve(root: Path) -> str | None:
    project = project_at(root)
    return resolve_secret(project.config, FIELD, project.config_name, root)


def _edit(root: Path, change: Callable[[dict[str, object]], None]) -> None:
    path = root / FILE
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _value(data: dict[str, object]) -> dict[str, str]:
    keycloak = data["keycloak"]
    assert isinstance(keycloak, dict)
    return keycloak


def wrong_key(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("SOPS_AGE_KEY_FILE", str(keys.other))


def missing_key_file(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("SOPS_AGE_KEY_FILE", str(root / "gone" / "keys.txt"))


def no_key_at_all(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    mp.delenv("SOPS_AGE_KEY_FILE")


def tampered_value(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    def flip_iv(data: dict[str, object]) -> None:
        value = _value(data)
        head, _, rest = value["root_password"].partition(",iv:")
        value["root_password"] = f"{head},iv:{'A' if rest[0] != 'A' else 'B'}{rest[1:]}"

    _edit(root, flip_iv)


def tampered_type_tag(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    _edit(
        root,
        lambda d: _value(d).update(
            root_password=_value(d)["root_password"].replace("type:str", "type:bytes")
        ),
    )


def tampered_mac(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    def flip(data: dict[str, object]) -> None:
        meta = data["sops"]
        assert isinstance(meta, dict)
        head, _, rest = meta["mac"].partition("data:")
        meta["mac"] = f"{head}data:{'A' if rest[0] != 'A' else 'B'}{rest[1:]}"

    _edit(root, flip)


def value_removed(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    _edit(root, lambda d: _value(d).pop("other"))


def plaintext_file(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    (root / FILE).write_text(f"keycloak:\n  root_password: {CANARY}\n")


def file_missing(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    (root / FILE).unlink()


def key_missing(root: Path, keys: AgeKeys, mp: pytest.MonkeyPatch) -> None:
    write_config(root, **root_password_ref(key="keycloak.nope"))


CASES = [
    (
        wrong_key,
        E.WrongKeyError,
        f"{FILE}: cannot decrypt: your age key is not one of the file's recipients",
        "doit secrets_update_keys",
    ),
    (
        missing_key_file,
        E.MissingKeyFileError,
        f"{FILE}: cannot decrypt: SOPS_AGE_KEY_FILE points to",
        "doit secrets_keygen",
    ),
    (no_key_at_all, E.NoKeyError, f"{FILE}: cannot decrypt: no age key found", "set SOPS_AGE_KEY_FILE"),
    (
        tampered_value,
        E.TamperedError,
        f"{FILE}: a value does not decrypt: its ciphertext was changed",
        "git checkout -- secrets/keycloak.enc.yaml",
    ),
    (tampered_type_tag, E.TamperedError, f"{FILE}: a value does not decrypt", "doit secrets_encrypt"),
    (
        tampered_mac,
        E.MacMismatchError,
        f"{FILE}: MAC mismatch: the file was changed outside sops",
        "git checkout",
    ),
    (value_removed, E.MacMismatchError, f"{FILE}: MAC mismatch", "restore it from git"),
    (
        plaintext_file,
        E.NotEncryptedError,
        f"{FILE}: not encrypted (no sops metadata) (named by nebari-config.yaml: {FIELD})",
        "doit secrets_encrypt",
    ),
    (
        file_missing,
        E.SecretFileMissingError,
        f"{FILE}: not found (named by nebari-config.yaml: {FIELD})",
        "doit secrets_encrypt",
    ),
    (
        key_missing,
        E.SecretKeyMissingError,
        f"nebari-config.yaml: {FIELD}: key 'keycloak.nope' not found in {FILE} (it has: keycloak.root_password, keycloak.other)",
        "--key keycloak.nope",
    ),
]


@pytest.mark.parametrize(("breakage", "error", "starts", "fix"), CASES, ids=[c[0].__name__ for c in CASES])
def test_each_bad_input_is_one_line_naming_the_file_and_the_fix(
    root: Path,
    keys: AgeKeys,
    monkeypatch: pytest.MonkeyPatch,
    breakage: Callable[[Path, AgeKeys, pytest.MonkeyPatch], None],
    error: type[SecretError],
    starts: str,
    fix: str,
) -> None:
    assert resolve(root) == CANARY  # works before the breakage
    STORE.clear()
    breakage(root, keys, monkeypatch)
    with pytest.raises(SecretError) as caught:
        resolve(root)
    message = str(caught.value)
    assert type(caught.value) is error
    assert message.startswith(starts), message
    assert fix in message
    assert "\n" not in message and CANARY not in message
    # Nothing chained for a traceback to show (sops's stderr, a parser error quoting the file).
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_preflight_fails_before_any_stage_on_a_bad_secret(
    root: Path, keys: AgeKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `doit deploy` runs first: every secret of every stage must decrypt."""
    (root / "lockfiles").mkdir()
    (root / "lockfiles" / "versions.yaml").write_text(
        (Path(__file__).parents[1] / "lockfiles" / "versions.yaml").read_text()
    )
    assert check_stage_secrets(project_at(root)) >= 1
    STORE.clear()
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys.other))
    with pytest.raises(E.WrongKeyError):
        check_stage_secrets(project_at(root))


def test_a_rules_file_sops_cannot_use_is_named(root: Path) -> None:
    (root / "secrets" / ".sops.yaml").write_text("creation_rules: {not: a list}\n")
    with pytest.raises(E.RulesError) as caught:
        secrets_encrypt(project_at(root), name="new", value="v")
    assert str(caught.value) == "secrets/.sops.yaml: creation_rules should be a list of rules"
