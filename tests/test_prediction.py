"""`status`'s prediction through the graph, for outputs the render cannot know.

The sandbox's outputs are all known from the render; a real resource's computed attribute
(a load balancer's host name) is not. A stage that reads such an output of a stage that
will re-apply is "deferred": planned after that stage applies, not "up to date".
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, create_model
from sandboxproject import ROOT

from stagegraph.inputs import stage_inputs
from stagegraph.prediction import predict
from stagegraph.project import Project
from stagegraph.render import render_stage, write_stage
from stagegraph.stage import RenderContext, Rendered, Stage, StageIO
from stagegraph.tfjson import TerraformModule

LbOutputs = create_model(
    "LbOutputs",
    __base__=StageIO,
    hostname=(str, Field(description="computed by the cloud")),
    domain=(str, Field(description="from the config")),
)
AppInputs = create_model("AppInputs", __base__=StageIO, hostname=(str, Field(description="d")))
DomainInputs = create_model("DomainInputs", __base__=StageIO, domain=(str, Field(description="d")))


def render_lb(ctx: RenderContext) -> Rendered:
    m = TerraformModule(sandbox=False, comment="lb")
    lb = m.resource("aws_lb", "main", {"name": ctx.config.domain})
    m.output("hostname", lb.attr("dns_name"), "d")
    m.output("domain", ctx.config.domain, "d")
    return {"main.tf.json": m.document()}


def render_app(ctx: RenderContext) -> Rendered:
    m = TerraformModule(sandbox=True, comment="app")
    m.resource("terraform_data", "x", {"input": "${var.hostname}"})
    return {"main.tf.json": m.document()}


def render_site(ctx: RenderContext) -> Rendered:
    m = TerraformModule(sandbox=True, comment="site")
    m.resource("terraform_data", "x", {"input": "${var.domain}"})
    return {"main.tf.json": m.document()}


LB = Stage("90-lb", "lb", render_lb, config_sections=("domain",), outputs=LbOutputs, priority=900)
APP = Stage(
    "91-app",
    "app",
    render_app,
    depends_on=("90-lb",),
    inputs=AppInputs,
    priority=910,
    connect=lambda up: AppInputs(hostname=up.get(LbOutputs).hostname),
)
SITE = Stage(
    "92-site",
    "site",
    render_site,
    depends_on=("90-lb",),
    inputs=DomainInputs,
    priority=920,
    connect=lambda up: DomainInputs(domain=up.get(LbOutputs).domain),
)


def project(root: Path) -> Project:
    if not (root / "nebari-config.yaml").exists():
        (root / "lockfiles").mkdir(parents=True)
        shutil.copy(ROOT / "lockfiles" / "versions.yaml", root / "lockfiles" / "versions.yaml")
        shutil.copy(ROOT / "nebari-config.yaml", root / "nebari-config.yaml")
    p = Project.discover(root, None, env={})
    p.extra_stages = (LB, APP, SITE)
    return p


def applied(p: Project, stage: Stage, outputs: dict[str, Any]) -> None:
    """Render and record `stage` as a deploy would have."""
    write_stage(p.output_root, render_stage(stage, p.config, p.lock, p.lockfile_name))
    now = stage_inputs(p, stage)
    p.records.record_success(
        stage.name,
        fingerprint=now.fingerprint,
        inputs=now.inputs,
        outputs=outputs,
        attempted_at=datetime.now(UTC),
    )


def test_a_stage_reading_an_output_known_only_after_apply_is_deferred(tmp_path: Path) -> None:
    p = project(tmp_path)
    applied(p, LB, {"hostname": "lb-1.aws.example", "domain": "demo.example.com"})
    applied(p, APP, {})
    applied(p, SITE, {})
    states = predict(p, ["91-app", "92-site"])
    assert [states[n].state for n in ("90-lb", "91-app", "92-site")] == ["applied"] * 3

    config = yaml.safe_load((tmp_path / "nebari-config.yaml").read_text())
    config["domain"] = "other.example.com"
    (tmp_path / "nebari-config.yaml").write_text(yaml.safe_dump(config))
    states = predict(project(tmp_path), ["91-app", "92-site"])
    assert states["90-lb"].state == "stale"
    # The domain output is known from the render: 92 is stale through it, for sure...
    assert states["92-site"].state == "stale" and states["92-site"].via == ("90-lb",)
    assert states["92-site"].note == "via 90-lb: var:domain"
    # ...the host name is not: 91 may or may not re-apply; it is planned after 90 applies.
    app = states["91-app"]
    assert app.state == "deferred" and app.via == ("90-lb",)
    assert app.reasons == ("planned after 90-lb applies: its output hostname is known only then",)
