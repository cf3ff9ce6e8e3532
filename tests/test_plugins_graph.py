"""Plugins that replace stages, and the plugin errors, as `python -m doit` shows them.

Each error is one line naming the plugin(s) and what to do; `doit list` keeps working (with
the built-in stages) so the user can still find their way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import write_plugin
from sandboxproject import SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INGRESS_REPLACEMENT = """
from stagegraph.stages.ingress import IngressOutputs


def render(ctx):
    m = TerraformModule(sandbox=ctx.sandbox, comment="04-kubernetes-ingress, replaced")
    m.resource("terraform_data", "ingress", {"input": "my own ingress"})
    m.output("load_balancer_address", "10.9.8.7", "Address.")
    m.output("domain", ctx.config.domain, "Domain.")
    m.output("certificate_type", "self-signed", "Certificate.")
    return {"main.tf.json": m.document()}


@hookimpl
def stagegraph_stages():
    yield Stage(
        name="04-kubernetes-ingress",
        description="My own ingress, replacing the built-in one",
        render=render,
        depends_on=("02-infrastructure", "03-kubernetes-initialize"),
        config_sections=("domain",),
        outputs=IngressOutputs,
        priority=41,
    )
"""


def project(tmp_path: Path, *imports: str, enabled: tuple[str, ...] = ()) -> SandboxProject:
    p = SandboxProject.create(tmp_path / "p")
    plugins = {"import": list(imports), "enabled": list(enabled)}
    p.edit_config(lambda c: c.setdefault("stagegraph", {}).update(plugins=plugins))
    return p


def failure(p: SandboxProject, *args: str) -> str:
    proc = p.doit(*args, check=False)
    assert proc.returncode != 0, f"doit {' '.join(args)} should fail"
    return proc.stdout + proc.stderr


def test_a_replacement_for_a_builtin_stage_takes_over(tmp_path: Path) -> None:
    p = project(tmp_path, "my_ingress.py")
    write_plugin(p.root, "my_ingress", INGRESS_REPLACEMENT)
    listing = p.doit("list").stdout
    assert "04-kubernetes-ingress                     My own ingress, replacing the built-in one" in listing
    assert "terraform (my_ingress)" in p.doit("graph").stdout
    p.doit("deploy", "--stop-at", "04-kubernetes-ingress")
    outputs = p.records()["04-kubernetes-ingress"]["outputs"]
    assert outputs == {
        "load_balancer_address": "10.9.8.7",
        "domain": "demo.example.com",
        "certificate_type": "self-signed",
        "certificate_ca": None,  # IngressOutputs' default: the replacement makes no certificate
    }
    rendered = (p.root / "stages" / "04-kubernetes-ingress" / "main.tf.json").read_text()
    assert "my own ingress" in rendered and "traefik" not in rendered


def test_two_plugins_replacing_the_same_stage_is_an_error_listing_both(tmp_path: Path) -> None:
    p = project(tmp_path, "one.py", "two.py")
    for name in ("one", "two"):
        write_plugin(
            p.root,
            name,
            '@hookimpl\ndef stagegraph_stages():\n    yield stage("05-kubernetes-keycloak", (), 60)\n',
        )
    expected = (
        "error: stage '05-kubernetes-keycloak' is provided by more than one plugin: plugin one (priority 60), "
        "plugin two (priority 60), built-in (priority 50); enable only one of one, two (stagegraph.plugins.enabled)"
    )
    assert expected in failure(p, "validate")
    assert expected in failure(p, "deploy")
    assert p.records() == {}
    assert "05-kubernetes-keycloak" in p.doit("list").stdout


def test_a_cycle_is_an_error_naming_every_provider(tmp_path: Path) -> None:
    p = project(tmp_path, "cyc.py")
    write_plugin(
        p.root,
        "cyc",
        """
        @hookimpl
        def stagegraph_stages():
            yield stage("12-a", ("11-kubernetes-kuberhealthy-healthchecks",), 120)
            yield stage("10-kubernetes-kuberhealthy", ("12-a",), 101)
        """,
    )
    out = failure(p, "validate")
    assert (
        "error: dependency cycle: 10-kubernetes-kuberhealthy -> 12-a -> "
        "11-kubernetes-kuberhealthy-healthchecks -> 10-kubernetes-kuberhealthy (each needs the next); "
        "stages involved: 10-kubernetes-kuberhealthy from cyc, 11-kubernetes-kuberhealthy-healthchecks "
        "from stagegraph, 12-a from cyc; remove one of these depends_on entries"
    ) in out


def test_a_misspelled_hook_is_an_error(tmp_path: Path) -> None:
    p = project(tmp_path, "typo.py")
    write_plugin(p.root, "typo", '@hookimpl\ndef stagegraph_stage():\n    yield stage("12-typo")\n')
    assert (
        "error: plugin 'typo' (import typo.py) implements unknown hook 'stagegraph_stage'; "
        "did you mean 'stagegraph_stages'?"
    ) in failure(p, "validate")


def test_import_plugin_brings_a_py_file_that_the_config_enables(tmp_path: Path) -> None:
    p = project(tmp_path, enabled=("extra",))
    path = write_plugin(
        tmp_path / "elsewhere",
        "extra",
        '@hookimpl\ndef stagegraph_stages():\n    yield stage("12-extra", ("02-infrastructure",), 120)\n',
    )
    # Enabled but not imported on this command: the config names a plugin that is missing.
    assert "plugin 'extra' is not installed" in failure(p, "validate")
    names = [line.split()[0] for line in p.doit(f"import_plugin={path}", "list").stdout.splitlines()]
    assert names[names.index("11-kubernetes-kuberhealthy-healthchecks") + 1] == "12-extra"
    p.extra_env["STAGEGRAPH_IMPORT_PLUGIN"] = str(path)
    p.doit("deploy", "--stop-at", "12-extra")
    assert "12-extra" in p.applied_in_last_run()


def test_import_plugin_alone_does_not_activate_a_plugin(tmp_path: Path) -> None:
    p = project(tmp_path)
    path = write_plugin(
        tmp_path / "elsewhere", "extra", '@hookimpl\ndef stagegraph_stages():\n    yield stage("12-extra")\n'
    )
    assert "12-extra" not in p.doit(f"import_plugin={path}", "list").stdout
    out = p.doit(f"import_plugin={path}", "plugins").stdout
    assert "extra (no version): not enabled (import " in out
    assert "(add 'extra' to stagegraph.plugins.enabled to use it)" in out
