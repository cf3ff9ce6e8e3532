"""Shared test setup: the golden-file update flag and paths, the SOPS tests' age keys, and a
deployed sandbox per module."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sandboxproject import SandboxProject
    from test_sops_support import AgeKeys

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/ from the current renders instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgeKeys:
    """Real age keys under tmp_path/home; SOPS_AGE_KEY_FILE is `mine` (see test_sops_support)."""
    from test_sops_support import make_keys

    return make_keys(monkeypatch, tmp_path / "home")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> SandboxProject:
    """One fully deployed sandbox per test module (real Terraform), shared by its tests."""
    from sandboxproject import SandboxProject

    project = SandboxProject.create(tmp_path_factory.mktemp("deployed"))
    project.doit("deploy")
    return project
