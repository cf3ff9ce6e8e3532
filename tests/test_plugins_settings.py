"""Plugin config sections and plugin tasks, in process.

A plugin's section lives at `stagegraph.plugins.settings.<name>`, is validated by the
plugin's own model (never merged into the main one), and its errors read like the main
config's. Plugin tasks become doit tasks whose failures are one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from doit.exceptions import TaskFailed
from plugin_helpers import plugins_config, write_plugin

from stagegraph.configfile import parse_config
from stagegraph.plugins import manager
from stagegraph.plugins.errors import PluginConflictError, PluginError, PluginSettingsError
from stagegraph.plugins.tasks import describe_plugins, format_plugins, plugin_tasks, validate_settings
from stagegraph.project import Project
from stagegraph.tasks import failing_cleanly

ROOT = Path(__file__).resolve().parents[1]

SECTION_PLUGIN = """
from pydantic import BaseModel, ConfigDict, Field
from stagegraph.plugins.hookspecs import ConfigSection


class GreeterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    greeting: str = Field("Hello", description="What to say.")
    times: int = Field(1, ge=1, description="How often.")


SECTION = ConfigSection(name="greeter", model=GreeterSettings)


@hookimpl
def stagegraph_config_section():
    return SECTION
"""


@pytest.fixture(autouse=True)
def fresh_manager() -> Iterator[None]:
    manager.reset()
    yield
    manager.reset()


def project_with(tmp_path: Path, raw: dict[str, Any]) -> Project:
    base = yaml.safe_load((ROOT / "nebari-config.yaml").read_text())
    base.setdefault("stagegraph", {}).update(raw["stagegraph"])
    (tmp_path / "nebari-config.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    (tmp_path / "lockfiles").mkdir(exist_ok=True)
    (tmp_path / "lockfiles" / "versions.yaml").write_text((ROOT / "lockfiles" / "versions.yaml").read_text())
    return Project.discover(tmp_path, None, env={})


def settings_errors(tmp_path: Path, **settings: Any) -> list[str]:
    write_plugin(tmp_path, "greeter", SECTION_PLUGIN)
    project = project_with(tmp_path, plugins_config(imports=("greeter.py",), **settings))
    with pytest.raises(PluginSettingsError) as err:
        validate_settings(
            project.config, project.config_name, manager.activate(project.raw_config, base=tmp_path)
        )
    return err.value.problems


def test_a_typo_in_a_plugin_section_reads_like_a_config_error(tmp_path: Path) -> None:
    assert settings_errors(tmp_path, greeter={"greting": "hi"}) == [
        "nebari-config.yaml: stagegraph.plugins.settings.greeter.greting: unknown key; "
        "did you mean 'greeting'? (got 'hi')"
    ]


def test_a_bad_value_in_a_plugin_section(tmp_path: Path) -> None:
    assert settings_errors(tmp_path, greeter={"times": 0}) == [
        "nebari-config.yaml: stagegraph.plugins.settings.greeter.times: "
        "Input should be greater than or equal to 1 (got 0)"
    ]


def test_a_section_no_enabled_plugin_reads_is_an_error(tmp_path: Path) -> None:
    assert settings_errors(tmp_path, greter={"greeting": "hi"}) == [
        "nebari-config.yaml: stagegraph.plugins.settings.greter: no enabled plugin has this section; "
        "did you mean 'greeter'? sections of enabled plugins: greeter (got a mapping with keys greeting)"
    ]


def test_a_missing_section_means_the_defaults(tmp_path: Path) -> None:
    write_plugin(tmp_path, "greeter", SECTION_PLUGIN)
    project = project_with(tmp_path, plugins_config(imports=("greeter.py",)))
    active = manager.activate(project.raw_config, base=tmp_path)
    validated = validate_settings(project.config, project.config_name, active)
    assert validated["greeter"].model_dump() == {"greeting": "Hello", "times": 1}


def test_the_main_model_keeps_the_section_as_plain_data(tmp_path: Path) -> None:
    text = (
        "provider: sandbox\nproject_name: demo\nstagegraph:\n  plugins:\n    settings:\n      any: {x: 1}\n"
    )
    config = parse_config(text, "nebari-config.yaml")
    assert config.stagegraph.plugins.settings == {"any": {"x": 1}}


def test_a_section_model_that_allows_unknown_keys_is_refused(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "loose",
        """
        from pydantic import BaseModel
        from stagegraph.plugins.hookspecs import ConfigSection

        class Loose(BaseModel):
            x: int = 1

        @hookimpl
        def stagegraph_config_section():
            return ConfigSection(name="loose", model=Loose)
        """,
    )
    project = project_with(tmp_path, plugins_config(imports=("loose.py",)))
    with pytest.raises(PluginError, match=r"config section model Loose must forbid unknown keys"):
        validate_settings(
            project.config, project.config_name, manager.activate(project.raw_config, base=tmp_path)
        )


# --- plugin tasks ------------------------------------------------------------------------------


TASK_PLUGIN = """
from stagegraph.errors import StagegraphError


@hookimpl
def stagegraph_tasks(context):
    def greet(who):
        if who == "nobody":
            raise StagegraphError("nobody to greet; pass --who NAME")
        print(f"hello {who} from {context.plugin}, {len(context.graph.stages)} stages")

    yield {
        "basename": "greet",
        "actions": [greet],
        "params": [{"name": "who", "long": "who", "default": "world"}],
    }
"""


def test_plugin_tasks_are_doit_tasks_whose_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_plugin(tmp_path, "tasky", TASK_PLUGIN)
    project = project_with(tmp_path, plugins_config(imports=("tasky.py",)))
    tasks = plugin_tasks(project, project.graph, ["deploy", "validate"], failing_cleanly)
    assert [t["basename"] for t in tasks] == ["greet"]
    action = tasks[0]["actions"][0]
    assert action(who="you") is None
    assert capsys.readouterr().out == "hello you from tasky, 10 stages\n"
    failed = action(who="nobody")
    assert isinstance(failed, TaskFailed) and failed.message == "nobody to greet; pass --who NAME"


def test_a_plugin_task_named_like_a_stage_or_command_is_refused(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "clash",
        """
        @hookimpl
        def stagegraph_tasks(context):
            yield {"basename": "deploy", "actions": []}
        """,
    )
    project = project_with(tmp_path, plugins_config(imports=("clash.py",)))
    with pytest.raises(PluginConflictError) as err:
        plugin_tasks(project, project.graph, ["deploy"], failing_cleanly)
    assert str(err.value) == (
        "plugin 'clash': task 'deploy' is already a built-in task; give the task another basename"
    )


def test_a_plugin_task_without_basename_is_refused(tmp_path: Path) -> None:
    write_plugin(tmp_path, "nobase", "@hookimpl\ndef stagegraph_tasks(context):\n    yield {'actions': []}\n")
    project = project_with(tmp_path, plugins_config(imports=("nobase.py",)))
    with pytest.raises(PluginError, match="stagegraph_tasks gave a task dict without a basename"):
        plugin_tasks(project, project.graph, [], failing_cleanly)


def test_doit_plugins_lists_name_version_origin_and_what_each_brings(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "greeter",
        SECTION_PLUGIN + TASK_PLUGIN,
    )
    write_plugin(
        tmp_path,
        "replacer",
        """
        __version__ = "2.1"

        @hookimpl
        def stagegraph_stages():
            yield stage("10-kubernetes-kuberhealthy", ("02-infrastructure",), 101)
        """,
    )
    project = project_with(tmp_path, plugins_config(imports=("greeter.py", "replacer.py")))
    text = format_plugins(describe_plugins(project, project.graph))
    blocks = text.split("\n")
    assert blocks[0] == "stagegraph 0.1.0: always (built-in)"
    assert (
        "greeter (no version): enabled (import greeter.py)\n  tasks: greet\n  settings: stagegraph.plugins.settings.greeter"
        in text
    )
    assert (
        "replacer 2.1: enabled (import replacer.py)\n"
        "  stages: 10-kubernetes-kuberhealthy (priority 101; replaces the built-in; needs 02-infrastructure)"
    ) in text
