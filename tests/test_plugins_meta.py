"""Meta-tests of the plugin system: every hook is documented, runnable and exercised.

- each hook spec's docstring ends with a complete plugin module; it is run here as a
  plugin, registered through the real manager (check_pending included) and its hook called;
- each hook is implemented by a plugin some test deploys or calls;
- docs/plugins.md explains each hook.
"""

from __future__ import annotations

import inspect
import re
import textwrap
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagegraph.plugins import hookspecs, manager
from stagegraph.plugins.collect import call_hook, stages_of
from stagegraph.plugins.hookspecs import ConfigSection
from stagegraph.plugins.manager import HOOKS, PluginInfo, registry
from stagegraph.project import Project

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "plugins" / "examples" / "stagegraph-hello"
MARK = "Example (a complete plugin module)::"


@pytest.fixture(autouse=True)
def fresh_manager() -> Iterator[None]:
    manager.reset()
    yield
    manager.reset()


def example_of(hook: str) -> str:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert MARK in doc, f"{hook}: the docstring has no '{MARK}' block"
    return textwrap.dedent(doc.split(MARK, 1)[1]).strip() + "\n"


def test_the_hooks_are_the_three_of_the_issue() -> None:
    assert HOOKS == ("stagegraph_config_section", "stagegraph_stages", "stagegraph_tasks")


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_typed_and_documented(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    signature = inspect.signature(spec)
    assert signature.return_annotation is not inspect.Signature.empty, f"{hook} has no return type"
    assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values())
    doc = inspect.getdoc(spec) or ""
    assert len(doc.split(MARK)[0].split()) > 30, f"{hook}: say what the hook is for before the example"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_docstring_example_is_a_working_plugin(hook: str, tmp_path: Path) -> None:
    module = types.ModuleType(f"example_{hook}")
    exec(compile(example_of(hook), f"<{hook} example>", "exec"), module.__dict__)
    registry().register(PluginInfo("example", "docstring example", "0", module))  # check_pending runs here
    results = call_hook(hook, ["example"], lambda _: {"context": _context(tmp_path)})
    assert len(results) == 1
    _, result = results[0]
    if hook == "stagegraph_stages":
        stages = stages_of("example", result, "nebari-config.yaml")
        assert [s.name for s in stages] == ["045-hello"] and stages[0].source == "example"
    elif hook == "stagegraph_tasks":
        assert [t["basename"] for t in result] == ["hello"]
    else:
        assert isinstance(result, ConfigSection) and result.name == "hello"


def _context(tmp_path: Path) -> object:
    from stagegraph.plugins.tasks import TaskContext

    (tmp_path / "nebari-config.yaml").write_text((ROOT / "nebari-config.yaml").read_text())
    project = Project.discover(tmp_path, None, env={})
    return TaskContext("example", project, project.graph)


def _sources() -> dict[Path, str]:
    files = [*ROOT.joinpath("tests").glob("test_plugins_*.py"), *EXAMPLE.rglob("*.py")]
    return {path: path.read_text(encoding="utf-8") for path in files}


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_implemented_by_a_plugin_the_tests_run(hook: str) -> None:
    implementing = [
        path.relative_to(ROOT)
        for path, text in _sources().items()
        if re.search(rf"@hookimpl\s*\n\s*def {hook}\(", text) and path.name != Path(__file__).name
    ]
    assert implementing, f"no test plugin implements {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_explained_in_the_docs(hook: str) -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert f"`{hook}" in docs, f"docs/plugins.md does not explain {hook}"


def test_the_example_plugin_registers_under_the_entry_point_group() -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["entry-points"][hookspecs.ENTRY_POINT_GROUP] == {"hello": "stagegraph_hello.plugin"}


def test_hookimpl_is_importable_from_the_package_without_importing_pluggy_for_everyone() -> None:
    import subprocess
    import sys

    code = (
        "import sys, stagegraph; assert 'pluggy' not in sys.modules, 'import stagegraph pulled in pluggy';"
        "from stagegraph import hookimpl; from stagegraph.plugins.hookspecs import hookimpl as h;"
        "assert hookimpl is h; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "ok\n"
