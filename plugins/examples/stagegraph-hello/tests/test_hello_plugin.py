"""The plugin's hooks, registered through stagegraph's manager exactly as an install would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stagegraph_hello.plugin
import yaml

from stagegraph.plugins import manager
from stagegraph.plugins.collect import call_hook
from stagegraph.plugins.manager import PluginInfo, registry
from stagegraph.plugins.tasks import TaskContext
from stagegraph.project import Project

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(autouse=True)
def hello_registered() -> Iterator[None]:
    manager.reset()
    # What an enabled entry point does: register the module under its entry-point name.
    registry().register(PluginInfo("hello", "test", "0.1.0", stagegraph_hello.plugin))
    yield
    manager.reset()


def test_it_brings_one_stage_one_task_and_one_section(tmp_path: Path) -> None:
    stages = call_hook("stagegraph_stages", ["hello"])
    assert [s.name for _, result in stages for s in result] == ["045-hello"]
    [(_, section)] = call_hook("stagegraph_config_section", ["hello"])
    assert section.name == "hello"
    project = _project(tmp_path, greeting="Hej")
    [(_, tasks)] = call_hook(
        "stagegraph_tasks", ["hello"], lambda p: {"context": TaskContext(p, project, project.graph)}
    )
    assert [t["basename"] for t in tasks] == ["hello"]


def test_doit_hello_before_any_deploy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, greeting="Hej")
    [(_, tasks)] = call_hook(
        "stagegraph_tasks", ["hello"], lambda p: {"context": TaskContext(p, project, project.graph)}
    )
    action = tasks[0]["actions"][0]
    action(to="")
    assert capsys.readouterr().out == "Hej, world! (045-hello is not deployed yet: run `doit deploy`)\n"
    action(to="Ada")
    assert capsys.readouterr().out == "Hej, Ada, from https://demo.example.com\n"


def _project(tmp_path: Path, **hello: str) -> Project:
    config = yaml.safe_load((REPO / "nebari-config.yaml").read_text())
    config.setdefault("stagegraph", {})["plugins"] = {"enabled": ["hello"], "settings": {"hello": hello}}
    (tmp_path / "nebari-config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "lockfiles").mkdir()
    (tmp_path / "lockfiles" / "versions.yaml").write_text((REPO / "lockfiles" / "versions.yaml").read_text())
    return Project.discover(tmp_path, None, env={})
