"""A plugin stage with its own deploy / check / destroy steps (Nebari's interface), end to end.

The plugin is a `.py` file the config imports. Its custom stage keeps a ledger file of the
steps it ran, which is what these tests read to know what the engine called; a Terraform
stage and another custom stage downstream read its outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sandboxproject import SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LEDGER_PLUGIN = '''
import contextlib
import os

from pydantic import Field

from stagegraph.plugins.custom import CustomStage
from stagegraph.plugins.hookspecs import hookimpl
from stagegraph.stage import Stage, StageIO
from stagegraph.tfjson import TerraformModule


class LedgerOutputs(StageIO):
    entries: int = Field(description="Lines in the ledger after the deploy.")
    domain: str = Field(description="Domain, from the ingress stage.")


class Ledger(CustomStage):
    """Keeps a ledger of the steps it ran."""

    name = "047-ledger"
    priority = 47
    depends_on = ("04-kubernetes-ingress",)
    config_sections = ("domain",)
    outputs = LedgerOutputs

    def _write(self, step):
        if os.environ.get("LEDGER_FAIL") == step:
            raise ValueError(f"told to fail in {step}")
        path = self.context.stage_dir / "ledger.log"
        with path.open("a") as handle:
            handle.write(f"{step} {self.inputs['domain']}\\n")
        return len(path.read_text().splitlines())

    @contextlib.contextmanager
    def deploy(self, stage_outputs):
        entries = self._write("deploy")
        stage_outputs[self.name] = {
            "entries": entries,
            "domain": stage_outputs["04-kubernetes-ingress"]["domain"],
        }
        yield

    def check(self, stage_outputs):
        assert stage_outputs[self.name]["entries"] >= 1
        self._write("check")

    @contextlib.contextmanager
    def destroy(self, stage_outputs, status):
        self._write(f"destroy-with-{stage_outputs[self.name]['entries']}-entries")
        yield
        status[self.name] = os.environ.get("LEDGER_DESTROY_STATUS") != "false"


class Echo(CustomStage):
    """Reads the ledger's outputs as plain data, the Nebari way."""

    name = "049-echo"
    priority = 49
    depends_on = ("047-ledger",)

    @contextlib.contextmanager
    def deploy(self, stage_outputs):
        entries = stage_outputs["047-ledger"]["entries"]
        (self.context.stage_dir / "echo.txt").write_text(f"ledger has {entries} entries\\n")
        yield


class SeenInputs(StageIO):
    entries: int = Field(description="Entries of the ledger.")


class SeenOutputs(StageIO):
    seen: int = Field(description="What Terraform saw.")


def render_seen(ctx):
    m = TerraformModule(sandbox=ctx.sandbox, comment="048-seen")
    m.resource("terraform_data", "seen", {"input": "${var.entries}"})
    m.output("seen", "${var.entries}", "Entries seen by Terraform.")
    return {"main.tf.json": m.document()}


SEEN = Stage(
    name="048-seen",
    description="A Terraform stage that reads the ledger's typed outputs",
    render=render_seen,
    depends_on=("047-ledger",),
    inputs=SeenInputs,
    connect=lambda up: SeenInputs(entries=up.get(LedgerOutputs).entries),
    outputs=SeenOutputs,
    priority=48,
)


@hookimpl
def stagegraph_stages():
    return [Ledger, SEEN, Echo]
'''


@pytest.fixture
def project(tmp_path: Path) -> SandboxProject:
    p = SandboxProject.create(tmp_path / "p")
    (p.root / "ledger.py").write_text(LEDGER_PLUGIN)
    p.edit_config(lambda c: c.setdefault("stagegraph", {}).update(plugins={"import": ["ledger.py"]}))
    return p


def ledger(p: SandboxProject) -> list[str]:
    path = p.root / "stages" / "047-ledger" / "ledger.log"
    return path.read_text().splitlines() if path.exists() else []


def deploy(p: SandboxProject, check: bool = True) -> str:
    proc = p.doit("deploy", "--stop-at", "049-echo", check=check)
    return proc.stdout + proc.stderr


def test_it_deploys_incrementally_and_its_outputs_reach_later_stages(project: SandboxProject) -> None:
    p = project
    names = [line.split()[0] for line in p.doit("list").stdout.splitlines()]
    assert names[names.index("04-kubernetes-ingress") + 1 :][:3] == ["047-ledger", "048-seen", "049-echo"]

    deploy(p)
    assert ledger(p) == ["deploy demo.example.com", "check demo.example.com"]
    records = p.records()
    assert records["047-ledger"]["outputs"] == {"entries": 1, "domain": "demo.example.com"}
    assert records["047-ledger"]["runner"] == "custom stage (ledger)"
    assert records["048-seen"]["outputs"] == {"seen": 1}
    assert (p.root / "stages" / "049-echo" / "echo.txt").read_text() == "ledger has 1 entries\n"
    descriptor = json.loads((p.root / "stages" / "047-ledger" / "stage.json").read_text())
    assert descriptor["inputs"] == {"domain": "demo.example.com"}

    deploy(p)  # nothing changed: the custom stage's steps do not run again
    assert p.applied_in_last_run() == set()
    assert len(ledger(p)) == 2

    p.edit_config(lambda c: c.update(domain="other.example.com"))
    deploy(p)
    assert {"047-ledger", "048-seen", "049-echo"} <= p.applied_in_last_run()
    assert ledger(p)[2:] == ["deploy other.example.com", "check other.example.com"]
    assert p.records()["048-seen"]["outputs"] == {"seen": 3}


def test_a_failing_deploy_fails_the_stage_and_is_retried(project: SandboxProject) -> None:
    p = project
    p.extra_env["LEDGER_FAIL"] = "deploy"
    out = deploy(p, check=False)
    assert (
        "stage 047-ledger (plugin ledger): deploy failed: ValueError: told to fail in deploy; "
        "fix it and deploy again (the stage is retried)"
    ) in out
    assert p.records()["047-ledger"]["status"] == "failed"
    assert "048-seen" not in p.records()

    del p.extra_env["LEDGER_FAIL"]
    deploy(p)
    assert {"047-ledger", "048-seen", "049-echo"} <= p.applied_in_last_run()
    assert ledger(p) == ["deploy demo.example.com", "check demo.example.com"]


def test_a_failing_check_fails_the_stage(project: SandboxProject) -> None:
    p = project
    p.extra_env["LEDGER_FAIL"] = "check"
    out = deploy(p, check=False)
    assert "stage 047-ledger (plugin ledger): check failed: ValueError: told to fail in check" in out
    assert p.records()["047-ledger"]["status"] == "failed"


def test_destroy_calls_its_destroy_step_with_its_outputs(project: SandboxProject) -> None:
    p = project
    deploy(p)
    p.doit("destroy")
    assert ledger(p)[-1] == "destroy-with-1-entries demo.example.com"
    records = p.records()
    assert {records[n]["status"] for n in ("047-ledger", "048-seen", "049-echo")} == {"destroyed"}


def test_a_destroy_that_reports_failure_fails(project: SandboxProject) -> None:
    p = project
    deploy(p)
    p.extra_env["LEDGER_DESTROY_STATUS"] = "false"
    proc = p.doit("destroy", check=False)
    assert proc.returncode != 0
    assert (
        "stage 047-ledger (plugin ledger): destroy reported failure (status['047-ledger'] is False)"
    ) in proc.stdout + proc.stderr
    assert p.records()["047-ledger"]["status"] == "failed"
    # Stages it needs were not destroyed after the failure.
    assert p.records()["04-kubernetes-ingress"]["status"] == "applied"
