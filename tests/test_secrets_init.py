"""`doit init` puts the Keycloak root password straight into an encrypted file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from test_sops_support import AgeKeys, isolate_sops, make_keys, write_rules

from stagegraph.configfile import parse_config
from stagegraph.initconfig import render_init_config, write_new_config
from stagegraph.schema.secret import SecretRef
from stagegraph.sops.errors import RulesError
from stagegraph.sops.init import ROOT_PASSWORD_FILE, ROOT_PASSWORD_KEY, init_root_password_secret
from stagegraph.sops.run import project_sops
from stagegraph.sops.store import SecretStore


def test_on_a_fresh_machine_init_creates_key_rules_and_encrypted_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_sops(monkeypatch, tmp_path / "home")
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    root = tmp_path / "project"
    root.mkdir()
    notes: list[str] = []
    ref = init_root_password_secret(root, notes=notes)
    assert ref == {"sops": ROOT_PASSWORD_FILE, "key": ROOT_PASSWORD_KEY}

    key_file = tmp_path / "home" / "xdg" / "sops" / "age" / "keys.txt"  # where sops looks by default
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    rules = yaml.safe_load((root / "secrets" / ".sops.yaml").read_text())
    recipient = rules["creation_rules"][0]["age"]
    assert (
        notes[0]
        == f"{key_file}: created an age key (public key {recipient}); back this file up, it decrypts your secrets"
    )

    password = SecretStore().value(project_sops(root), ROOT_PASSWORD_FILE, ROOT_PASSWORD_KEY)
    assert len(password) >= 24
    assert password.encode() not in (root / ROOT_PASSWORD_FILE).read_bytes()
    assert all(password not in note for note in notes)

    text = render_init_config("sandbox", "demo", "demo.example.com", "password", {}, root_password_ref=ref)
    assert password not in text
    write_new_config(root / "nebari-config.yaml", text)
    config = parse_config((root / "nebari-config.yaml").read_text(), "nebari-config.yaml")
    assert config.security.keycloak.initial_root_password == SecretRef(
        sops=ROOT_PASSWORD_FILE, key=ROOT_PASSWORD_KEY
    )


def test_a_second_init_keeps_the_password_already_encrypted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_keys(monkeypatch, tmp_path / "home")
    root = tmp_path / "project"
    root.mkdir()
    init_root_password_secret(root)
    before = (root / ROOT_PASSWORD_FILE).read_bytes()
    notes: list[str] = []
    init_root_password_secret(root, notes=notes)
    assert (root / ROOT_PASSWORD_FILE).read_bytes() == before
    assert notes == [f"{ROOT_PASSWORD_FILE}: kept the root password already there"]


def test_init_refuses_rules_that_would_lock_you_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys: AgeKeys = make_keys(monkeypatch, tmp_path / "home")
    root = tmp_path / "project"
    write_rules(root, keys.other_public)  # the team's rule lists someone else only
    with pytest.raises(RulesError) as caught:
        init_root_password_secret(root)
    assert str(caught.value).startswith(
        f"secrets/.sops.yaml: the rule for {ROOT_PASSWORD_FILE} does not list your age key {keys.mine_public}"
    )
    assert not (root / ROOT_PASSWORD_FILE).exists()
