"""Guards the package layout choice (README, "Layout").

doit puts the folder of dodo.py first on sys.path. A root folder with an __init__.py would
become a top-level package there: `secrets/__init__.py` would hide the standard library's
`secrets` inside every task, and `schema`, `stages`, `lockfiles` are names taken on PyPI.
So the root folders carry no __init__.py and the code is importable only as `stagegraph.*`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sandboxproject import SandboxProject

ROOT = Path(__file__).resolve().parents[1]


def test_root_folders_are_not_packages() -> None:
    for name in ("stages", "schema", "plugins", "secrets", "lockfiles", "tests"):
        assert not (ROOT / name / "__init__.py").exists(), f"{name}/__init__.py would shadow a top-level name"


def test_code_is_importable_only_under_one_root(tmp_path: Path) -> None:
    """With the project root first on sys.path (as doit puts it), every module of the
    package is loaded once, as `stagegraph.*`: no file of it also runs under a second
    name (`stages.builtin`), which would make two copies of every registry and class."""
    project = SandboxProject.create(tmp_path / "p")
    code = (
        "import sys, pathlib; sys.path.insert(0, '.');"
        "import stagegraph, stagegraph.tasks, stagegraph.stages.builtin, stagegraph.schema.config;"
        "import stagegraph.plugins.manager;"
        "pkg = pathlib.Path(stagegraph.__file__).parent.resolve();"
        "mods = [(n, pathlib.Path(m.__file__).resolve()) for n, m in list(sys.modules.items())"
        " if getattr(m, '__file__', None)];"
        "ours = [(n, f) for n, f in mods if pkg in f.parents];"
        "print(len(ours)); print(*sorted(n for n, f in ours if not n.startswith('stagegraph')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True, check=True
    )
    count, strays = proc.stdout.splitlines()
    assert int(count) > 20 and strays == ""


def test_stdlib_secrets_wins_with_the_project_root_first_on_sys_path(tmp_path: Path) -> None:
    """What doit does: the dodo.py folder goes first on sys.path; `secrets` stays stdlib."""
    project = SandboxProject.create(tmp_path / "p")
    (project.root / "secrets").mkdir(exist_ok=True)
    (project.root / "secrets" / "keycloak.enc.yaml").write_text("sops: {}\n")
    code = (
        "import sys; sys.path.insert(0, '.');"
        "import secrets, stagegraph.tasks, stagegraph.stages.builtin;"
        "print(secrets.__file__); print(hasattr(secrets, 'token_hex'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True, check=True
    )
    module_file, has_token_hex = out.stdout.split()
    assert Path(module_file).parent != project.root / "secrets"
    assert Path(module_file).name == "secrets.py" and has_token_hex == "True"
    assert project.doit("list").returncode == 0
