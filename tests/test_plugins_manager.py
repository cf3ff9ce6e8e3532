"""Plugin discovery, activation and the errors a plugin author or user can cause (in process).

The end-to-end tests (test_plugins_hello.py, test_plugins_custom.py, test_plugins_graph.py)
run the same paths through `python -m doit`; here each rule is checked directly and fast.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint, EntryPoints
from pathlib import Path

import pytest
from plugin_helpers import graph_for, plugins_config, write_plugin

from stagegraph.errors import GraphError, StagegraphError
from stagegraph.plugins import manager
from stagegraph.plugins.errors import HookError, PluginConflictError, PluginError, PluginNotFoundError
from stagegraph.plugins.manager import activate, plugin_manager, stages_for
from stagegraph.stages.builtin import BUILTIN_STAGES

BUILTIN_NAMES = [s.name for s in BUILTIN_STAGES]


@pytest.fixture(autouse=True)
def fresh_manager() -> Iterator[None]:
    manager.reset()
    yield
    manager.reset()


def fake_installed(monkeypatch: pytest.MonkeyPatch, folder: Path, **plugins: str) -> None:
    """Installed plugins as entry points (name -> module) of modules found in `folder`."""
    monkeypatch.syspath_prepend(str(folder))
    eps = EntryPoints(EntryPoint(name, module, "stagegraph") for name, module in plugins.items())
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: eps if group == "stagegraph" else ())


# --- built-ins and activation -----------------------------------------------------------------


def test_builtin_stages_are_registered_through_the_same_hook() -> None:
    pm = plugin_manager()
    providers = [impl.plugin_name for impl in pm.hook.stagegraph_stages.get_hookimpls()]
    assert providers == ["stagegraph"]
    stages = stages_for({})
    assert [s.name for s in stages] == BUILTIN_NAMES
    assert {s.source for s in stages} == {"stagegraph"}


def test_one_manager_per_process() -> None:
    assert plugin_manager() is plugin_manager()


def test_a_py_file_from_the_config_lands_between_ingress_and_keycloak(tmp_path: Path) -> None:
    write_plugin(
        tmp_path / "local",
        "between",
        """
        @hookimpl
        def stagegraph_stages():
            yield stage("045-between", ("04-kubernetes-ingress",), 45)
        """,
    )
    graph = graph_for(plugins_config(imports=("local/between.py",)), tmp_path)
    names = graph.names
    assert (
        names.index("04-kubernetes-ingress")
        < names.index("045-between")
        < names.index("05-kubernetes-keycloak")
    )
    assert graph["045-between"].source == "between"


def test_an_installed_plugin_is_not_imported_until_the_config_enables_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(
        tmp_path,
        "lazyplug_mod",
        """
        @hookimpl
        def stagegraph_stages():
            yield stage("12-lazy", ("11-kubernetes-kuberhealthy-healthchecks",), 120)
        """,
    )
    fake_installed(monkeypatch, tmp_path, lazy="lazyplug_mod")
    assert [s.name for s in stages_for({})] == BUILTIN_NAMES
    assert "lazyplug_mod" not in sys.modules
    stages = stages_for(plugins_config(enabled=("lazy",)), base=tmp_path)
    assert stages[-1].name == "12-lazy" and stages[-1].source == "lazy"
    assert "lazyplug_mod" in sys.modules
    monkeypatch.delitem(sys.modules, "lazyplug_mod")


def test_enabling_a_plugin_that_is_not_installed_names_it_and_the_installed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(tmp_path, "hello_mod_x", "@hookimpl\ndef stagegraph_stages():\n    return []\n")
    fake_installed(monkeypatch, tmp_path, hello="hello_mod_x")
    with pytest.raises(PluginNotFoundError) as err:
        stages_for(plugins_config(enabled=("helo",)), base=tmp_path)
    assert str(err.value) == (
        "nebari-config.yaml: stagegraph.plugins.enabled: plugin 'helo' is not installed; "
        "did you mean 'hello'? found: hello; pip install it, add its module or .py file to "
        "stagegraph.plugins.import, or remove it"
    )


def test_a_command_line_import_is_active_only_when_enabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_plugin(
        tmp_path,
        "cli_plug",
        """
        @hookimpl
        def stagegraph_stages():
            yield stage("12-cli", (), 120)
        """,
    )
    monkeypatch.chdir(tmp_path)
    env = {manager.IMPORT_ENV: str(path)}
    assert activate({}, base=tmp_path, env=env) == ("stagegraph",)
    assert activate(plugins_config(enabled=("cli_plug",)), base=tmp_path, env=env) == (
        "stagegraph",
        "cli_plug",
    )


def test_doit_import_plugin_variable_imports_a_module_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(tmp_path, "dotted_plug_mod", "@hookimpl\ndef stagegraph_stages():\n    return []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    manager.set_command_line_imports(manager.split_imports("dotted_plug_mod"))
    active = activate(plugins_config(enabled=("dotted_plug_mod",)), base=tmp_path, env={})
    assert active == ("stagegraph", "dotted_plug_mod")
    monkeypatch.delitem(sys.modules, "dotted_plug_mod")


def test_a_missing_plugin_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(
        PluginNotFoundError, match=r"plugin file 'nope\.py' not found \(looked for .*nope\.py\)"
    ):
        stages_for(plugins_config(imports=("nope.py",)), base=tmp_path)


def test_a_missing_module_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PluginNotFoundError, match="no module named 'not_a_module_xyz'; install it"):
        stages_for(plugins_config(imports=("not_a_module_xyz",)), base=tmp_path)


def test_a_plugin_that_fails_to_import_is_named(tmp_path: Path) -> None:
    write_plugin(tmp_path, "broken", "raise RuntimeError('boom')\n")
    with pytest.raises(
        PluginError, match=re.escape("importing plugin 'broken.py' failed: RuntimeError: boom")
    ):
        stages_for(plugins_config(imports=("broken.py",)), base=tmp_path)


def test_two_plugins_with_the_same_name_are_refused(tmp_path: Path) -> None:
    body = "@hookimpl\ndef stagegraph_stages():\n    return []\n"
    write_plugin(tmp_path / "a", "same", body)
    write_plugin(tmp_path / "b", "same", body)
    with pytest.raises(
        PluginConflictError,
        match=re.escape("two plugins are named 'same': import a/same.py and import b/same.py"),
    ):
        stages_for(plugins_config(imports=("a/same.py", "b/same.py")), base=tmp_path)


# --- hook checks ----------------------------------------------------------------------------------


def test_a_misspelled_hook_is_an_error_thanks_to_check_pending(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "typo",
        """
        @hookimpl
        def stagegraph_stage():
            yield stage("12-typo")
        """,
    )
    with pytest.raises(HookError) as err:
        stages_for(plugins_config(imports=("typo.py",)), base=tmp_path)
    assert str(err.value) == (
        "plugin 'typo' (import typo.py) implements unknown hook 'stagegraph_stage'; did you mean "
        "'stagegraph_stages'? hooks: stagegraph_config_section, stagegraph_stages, stagegraph_tasks"
    )
    # The failed plugin is gone: the next command starts from a clean manager.
    assert plugin_manager().get_plugin("typo") is None


def test_a_hook_function_without_hookimpl_is_an_error(tmp_path: Path) -> None:
    write_plugin(tmp_path, "bare", "def stagegraph_stages():\n    return []\n")
    with pytest.raises(HookError, match="function stagegraph_stages is not decorated with @hookimpl"):
        stages_for(plugins_config(imports=("bare.py",)), base=tmp_path)


def test_a_hook_with_arguments_the_spec_lacks_is_an_error(tmp_path: Path) -> None:
    write_plugin(tmp_path, "args", "@hookimpl\ndef stagegraph_tasks(ctx):\n    return []\n")
    with pytest.raises(HookError) as err:
        stages_for(plugins_config(imports=("args.py",)), base=tmp_path)
    assert str(err.value) == (
        "plugin 'args' (import args.py): hook stagegraph_tasks(ctx) takes ctx, which the hook does "
        "not pass; write stagegraph_tasks(context)"
    )


def test_a_plugin_without_hooks_is_an_error(tmp_path: Path) -> None:
    write_plugin(tmp_path, "empty", "X = 1\n", helper=False)
    with pytest.raises(HookError, match=r"plugin 'empty' \(import empty.py\) implements no hook"):
        stages_for(plugins_config(imports=("empty.py",)), base=tmp_path)


def test_a_hook_that_raises_is_reported_as_the_plugins(tmp_path: Path) -> None:
    write_plugin(tmp_path, "raising", "@hookimpl\ndef stagegraph_stages():\n    raise KeyError('x')\n")
    with pytest.raises(PluginError, match="plugin 'raising': hook stagegraph_stages raised KeyError: 'x'"):
        stages_for(plugins_config(imports=("raising.py",)), base=tmp_path)


def test_a_hook_that_returns_something_else_than_stages(tmp_path: Path) -> None:
    write_plugin(tmp_path, "junk", "@hookimpl\ndef stagegraph_stages():\n    return ['04-x']\n")
    with pytest.raises(PluginError, match="stagegraph_stages gave a str; give Stage records or CustomStage"):
        stages_for(plugins_config(imports=("junk.py",)), base=tmp_path)


# --- replacing, clashes, cycles -------------------------------------------------------------------


def test_a_stage_with_a_builtin_name_and_higher_priority_replaces_it(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "better",
        """
        @hookimpl
        def stagegraph_stages():
            yield stage("10-kubernetes-kuberhealthy", ("02-infrastructure",), 101, description="Better health")
        """,
    )
    graph = graph_for(plugins_config(imports=("better.py",)), tmp_path)
    assert graph.names.count("10-kubernetes-kuberhealthy") == 1
    replaced = graph["10-kubernetes-kuberhealthy"]
    assert (replaced.source, replaced.description) == ("better", "Better health")


def test_a_replacement_that_does_not_outrank_the_builtin_is_refused(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "weak",
        """
        @hookimpl
        def stagegraph_stages():
            yield stage("04-kubernetes-ingress", ("02-infrastructure",), 40)
        """,
    )
    with pytest.raises(PluginConflictError) as err:
        stages_for(plugins_config(imports=("weak.py",)), base=tmp_path)
    assert str(err.value) == (
        "stage '04-kubernetes-ingress' is provided by built-in (priority 40), plugin weak (priority 40): "
        "plugin weak replaces the built-in stage only with a higher priority; give it a priority above 40"
    )


def test_two_plugins_replacing_the_same_stage_lists_every_provider(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        write_plugin(
            tmp_path,
            name,
            """
            @hookimpl
            def stagegraph_stages():
                yield stage("05-kubernetes-keycloak", ("04-kubernetes-ingress",), 60)
            """,
        )
    with pytest.raises(PluginConflictError) as err:
        stages_for(plugins_config(imports=("alpha.py", "beta.py")), base=tmp_path)
    assert str(err.value) == (
        "stage '05-kubernetes-keycloak' is provided by more than one plugin: plugin alpha (priority 60), "
        "plugin beta (priority 60), built-in (priority 50); enable only one of alpha, beta "
        "(stagegraph.plugins.enabled)"
    )


def test_a_cycle_through_plugins_and_builtins_names_every_provider(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "loop_a",
        """
        @hookimpl
        def stagegraph_stages():
            yield stage("12-after-health", ("11-kubernetes-kuberhealthy-healthchecks",), 120)
        """,
    )
    write_plugin(
        tmp_path,
        "loop_b",
        """
        @hookimpl
        def stagegraph_stages():
            yield stage("10-kubernetes-kuberhealthy", ("12-after-health",), 101)
        """,
    )
    with pytest.raises(GraphError) as err:
        graph_for(plugins_config(imports=("loop_a.py", "loop_b.py")), tmp_path)
    message = str(err.value)
    assert message.startswith("dependency cycle: 10-kubernetes-kuberhealthy -> 12-after-health -> ")
    for who in (
        "10-kubernetes-kuberhealthy from loop_b",
        "12-after-health from loop_a",
        "11-kubernetes-kuberhealthy-healthchecks from stagegraph",
    ):
        assert who in message


def test_an_unknown_dependency_names_the_plugin_and_the_closest_stage(tmp_path: Path) -> None:
    write_plugin(
        tmp_path,
        "lost",
        """
        @hookimpl
        def stagegraph_stages():
            yield stage("045-lost", ("04-kubernetes-ingres",), 45)
        """,
    )
    with pytest.raises(
        PluginError,
        match=r"stage '045-lost' \(plugin lost\) depends on unknown stage "
        r"'04-kubernetes-ingres'; did you mean '04-kubernetes-ingress'\?",
    ):
        stages_for(plugins_config(imports=("lost.py",)), base=tmp_path)


def test_errors_are_stagegraph_errors_so_doit_prints_one_line() -> None:
    for cls in (HookError, PluginConflictError, PluginError, PluginNotFoundError):
        assert issubclass(cls, StagegraphError)


# --- custom stages ----------------------------------------------------------------------------


def test_a_custom_stage_renders_a_descriptor_without_secrets(tmp_path: Path) -> None:
    from stagegraph.configfile import parse_config
    from stagegraph.lockfile import load_lockfile
    from stagegraph.render import render_stage

    write_plugin(
        tmp_path,
        "custom_secret",
        """
        from stagegraph.plugins.custom import CustomStage

        class Reader(CustomStage):
            name = "12-reader"
            config_sections = ("security.keycloak", "domain")
            version = "3"

        @hookimpl
        def stagegraph_stages():
            return [Reader]
        """,
    )
    [stage] = [
        s
        for s in stages_for(plugins_config(imports=("custom_secret.py",)), base=tmp_path)
        if s.source != "stagegraph"
    ]
    assert (stage.kind, stage.source, stage.description) == ("custom", "custom_secret", "Reader")
    text = (
        "provider: sandbox\nproject_name: demo\ndomain: demo.example.com\n"
        "security:\n  keycloak:\n    initial_root_password: hunter2-do-not-leak\n"
    )
    config = parse_config(text, "nebari-config.yaml")
    lock = load_lockfile(Path(__file__).resolve().parents[1] / "lockfiles" / "versions.yaml")
    rendered = render_stage(stage, config, lock, "lockfiles/versions.yaml")
    assert list(rendered.files) == ["stage.json"]
    descriptor = rendered.files["stage.json"].decode()
    assert "hunter2" not in descriptor and '"initial_root_password": "**********"' in descriptor
    assert '"version": "3"' in descriptor and '"domain": "demo.example.com"' in descriptor
