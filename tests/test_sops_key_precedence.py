"""A key file named in SOPS_AGE_KEY_FILE is the only age key used (issue 12 item 4).

sops 3.11 on its own also tries the default keys.txt (and SOPS_AGE_KEY), so a wrong or
missing named file still decrypted with whatever key sat in the default place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_sops_support import CANARY, FIELD, AgeKeys, keycloak_project, project_at

from stagegraph.secretvalues import resolve_secret
from stagegraph.sops import errors as E
from stagegraph.sops.keys import default_key_file
from stagegraph.sops.store import STORE


@pytest.fixture
def root(tmp_path: Path, keys: AgeKeys, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = keycloak_project(tmp_path / "project", keys)
    # The right key also sits where sops looks by default, as on a developer's machine.
    default = default_key_file()
    default.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(keys.mine, default)
    assert str(tmp_path) in str(default)  # the test's own XDG_CONFIG_HOME, never the user's
    return root


def resolve(root: Path) -> str | None:
    STORE.clear()
    project = project_at(root)
    return resolve_secret(project.config, FIELD, project.config_name, root)


def test_the_named_file_is_used_when_it_holds_the_key(root: Path) -> None:
    assert resolve(root) == CANARY


def test_a_wrong_named_file_stops_even_with_the_right_default_key(
    root: Path, keys: AgeKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(keys.other))
    with pytest.raises(E.WrongKeyError, match=f"tried SOPS_AGE_KEY_FILE={keys.other}"):
        resolve(root)
    # The right key in SOPS_AGE_KEY does not count either: the file was named explicitly.
    monkeypatch.setenv("SOPS_AGE_KEY", keys.mine.read_text())
    with pytest.raises(E.WrongKeyError):
        resolve(root)


def test_a_missing_named_file_stops_with_one_line(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere" / "keys.txt"
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(missing))
    with pytest.raises(E.MissingKeyFileError) as info:
        resolve(root)
    message = str(info.value)
    assert "\n" not in message and f"points to {missing}, which does not exist" in message
    assert CANARY not in message


def test_without_a_named_file_the_default_key_is_used(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    assert resolve(root) == CANARY
