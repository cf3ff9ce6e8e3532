"""Broken or hostile files of a deployment meet one line, never a traceback or a hang
(issue 12 items 8, 9 and 10)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sandboxproject import SandboxProject

from stagegraph.configfile import MAX_DEPTH, load_config
from stagegraph.errors import ConfigError, LockfileError
from stagegraph.lockfile import load_lockfile


def _bomb(levels: int, width: int = 9) -> str:
    """A YAML 'billion laughs': `levels` anchors, each a list of `width` aliases of the last."""
    lines = [f"x0: &x0 [{', '.join(['lol'] * width)}]"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines)


def _config_with_overrides(block: str) -> str:
    indented = "\n".join("      " + line for line in block.splitlines())
    return (
        "provider: sandbox\nproject_name: demo\nhelm_extensions:\n  - name: app\n"
        "    repository: https://charts.example.com\n    chart: app\n    version: '1.0.0'\n"
        f"    overrides:\n{indented}\n"
    )


def _errors(proc: object) -> list[str]:
    out = str(getattr(proc, "stdout", "")) + str(getattr(proc, "stderr", ""))
    assert "Traceback" not in out, out
    return [line for line in out.splitlines() if line.startswith("error:")]


# --- item 10: bounded cost of reading a config ------------------------------------------------


def test_an_alias_bomb_in_a_free_form_field_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "nebari-config.yaml"
    path.write_text(_config_with_overrides(_bomb(9)))
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(path, display_name="nebari-config.yaml")
    assert time.monotonic() - started < 2.0
    assert caught.value.problems == [
        "nebari-config.yaml: line 14, column 11: the document is more than 200000 values once its "
        "aliases are expanded; write the values out instead of through so many aliases, or split the file"
    ]


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    path = tmp_path / "nebari-config.yaml"
    path.write_text(_config_with_overrides(_bomb(2)))
    config = load_config(path)
    assert len(config.helm_extensions[0].overrides["x2"]) == 9


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("a: &a [1, *a]", "an alias refers to itself"),
        ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels deep"),
    ],
)
def test_recursive_and_deep_documents_are_refused(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "nebari-config.yaml"
    path.write_text(_config_with_overrides(body))
    with pytest.raises(ConfigError, match=problem):
        load_config(path)


def test_doit_list_and_validate_stay_quick_on_a_bomb(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "deploy")
    (project.root / "nebari-config.yaml").write_text(_config_with_overrides(_bomb(9)))
    listed = project.doit("list", timeout=60)
    assert "01-terraform-state" in listed.stdout
    proc = project.doit("validate", check=False, timeout=60)
    assert proc.returncode != 0
    assert len(_errors(proc)) == 1 and "aliases are expanded" in _errors(proc)[0]


# --- item 9: a lockfile that is not UTF-8 ------------------------------------------------------


def test_a_lockfile_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "deploy")
    lock = project.root / "lockfiles" / "versions.yaml"
    lock.write_bytes(lock.read_bytes() + b"# caf\xe9\n")
    with pytest.raises(LockfileError, match=r"versions\.yaml: not UTF-8 text \(bad byte at offset \d+\)"):
        load_lockfile(lock)
    proc = project.doit("validate", check=False)
    assert proc.returncode != 0
    assert len(_errors(proc)) == 1 and "not UTF-8 text" in _errors(proc)[0]


# --- item 8: a corrupt doit database -----------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbled", "wrong shape"])
def test_a_corrupt_doit_database_is_moved_aside_with_one_line(tmp_path: Path, damage: str) -> None:
    project = SandboxProject.create(tmp_path / "deploy")
    project.doit("render")
    db = project.state_dir / "doit-db.json"
    good = db.read_bytes()
    db.write_bytes(
        {"truncated": good[: len(good) // 2], "garbled": b"\x00\xff" * 50, "wrong shape": b"[1, 2]"}[damage]
    )
    listed = project.doit("list")
    warnings = [line for line in listed.stderr.splitlines() if "doit's database" in line]
    assert len(warnings) == 1 and "moved it to doit-db.json.corrupt-" in warnings[0]
    assert "Traceback" not in listed.stderr
    assert len(list(project.state_dir.glob("doit-db.json.corrupt-*"))) == 1
    # The next render works and rebuilds a database doit can read again.
    project.doit("render")
    assert isinstance(json.loads(db.read_text()), dict)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("identity.json", "not a deployment identity; restore it from a backup"),
        ("state-location.json", "not a stagegraph state location; restore it from a backup"),
        ("state-move.json", "not a stagegraph state location; restore it from a backup"),
    ],
)
def test_a_damaged_state_file_of_the_folder_is_one_line_naming_it(
    tmp_path: Path, name: str, expected: str
) -> None:
    from stagegraph.errors import StagegraphError
    from stagegraph.identity import read_identity
    from stagegraph.statelocation import read_journal, recorded_location

    reader = {
        "identity.json": read_identity,
        "state-location.json": recorded_location,
        "state-move.json": read_journal,
    }
    assert reader[name](tmp_path) is None  # absent: nothing recorded yet
    (tmp_path / name).write_text('{"backend": ')
    with pytest.raises(StagegraphError) as refused:
        reader[name](tmp_path)
    assert str(refused.value).startswith(f"{tmp_path / name}: {expected}")
    assert "\n" not in str(refused.value)
