"""End to end on the sandbox: `plan` and `status` name exactly the stages `deploy` applies.

A user reads `doit status` or `doit plan` to learn what a deploy will do; both must tell
the truth, including stages that re-apply only because an upstream's outputs change
("stale via ..."). Each test makes one change, asks status and plan, deploys, and
compares the three sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sandboxproject import BUILTIN_STAGE_NAMES, SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WILL_APPLY = ("stale", "never applied", "failed", "destroyed")


def status_rows(project: SandboxProject) -> dict[str, tuple[str, str]]:
    """stage -> (state, note) as `doit status` prints them."""
    rows = {}
    for line in project.doit("status").stdout.splitlines():
        name = line.split(" ", 1)[0]
        if name in BUILTIN_STAGE_NAMES:
            rest = line[len(name) :].strip()
            state = next(s for s in ("applied", *WILL_APPLY, "deferred", "unknown") if rest.startswith(s))
            note = (
                rest[len(state) :].strip().split("  ", 1)[-1].strip()
                if "  " in rest[len(state) :].strip()
                else ""
            )
            rows[name] = (state, note)
    assert sorted(rows) == sorted(BUILTIN_STAGE_NAMES)
    return rows


def change_then_compare(
    project: SandboxProject, change: Callable[[dict[str, Any]], None]
) -> tuple[set[str], dict[str, str]]:
    """Make the change; the stages deploy applied, and what the plan said of each."""
    project.edit_config(change)
    by_status = {name for name, (state, _) in status_rows(project).items() if state in WILL_APPLY}
    project.doit("-n", "1", "plan")
    plan = {s["stage"]: s["reason"] for s in project.last_run()["stages"]}
    by_plan = {name for name, status in project.statuses().items() if status == "planned"}
    project.doit("deploy")
    applied = project.applied_in_last_run()
    assert by_status == applied, ("status", by_status, applied)
    assert by_plan == applied, ("plan", by_plan, applied)
    return applied, plan


def test_domain_change_status_plan_and_deploy_agree(deployed: SandboxProject) -> None:
    rows = status_rows(deployed)
    assert all(state == "applied" for state, _ in rows.values())
    deployed.edit_config(lambda c: c.update(domain="other.example.com"))
    rows = status_rows(deployed)
    # 05 reads nothing of the config that changed; it is stale through 04's outputs.
    assert rows["05-kubernetes-keycloak"] == ("stale", "via 04-kubernetes-ingress: var:base_url, var:domain")
    assert rows["10-kubernetes-kuberhealthy"][0] == "applied"
    why = deployed.doit("why", "07-kubernetes-services").stdout
    assert "stale via 04-kubernetes-ingress" in why and "var:domain: changed via 04-kubernetes-ingress" in why
    applied, plan = change_then_compare(deployed, lambda c: None)
    assert applied == {
        "04-kubernetes-ingress",
        "05-kubernetes-keycloak",
        "06-kubernetes-keycloak-configuration",
        "07-kubernetes-services",
        "08-nebari-tf-extensions",
        "11-kubernetes-kuberhealthy-healthchecks",
    }
    # The plan, made with 04's planned outputs, shows 05's real change, not "no changes".
    assert plan["05-kubernetes-keycloak"].startswith("0 to add, 1 to change, 0 to destroy")
    assert "inputs changed: var:base_url, var:domain" in plan["05-kubernetes-keycloak"]
    assert plan["10-kubernetes-kuberhealthy"] == "up to date"


def test_one_jupyterlab_value_is_stage_07_everywhere(deployed: SandboxProject) -> None:
    applied, _ = change_then_compare(
        deployed, lambda c: c.setdefault("jupyterlab", {}).update(preferred_dir="/home/shared")
    )
    assert applied == {"07-kubernetes-services"}


def test_a_hand_edited_rendered_file_is_reported_by_status_why_and_deploy(deployed: SandboxProject) -> None:
    main = deployed.root / "stages" / "08-nebari-tf-extensions" / "main.tf.json"
    original = main.read_text()
    doc = json.loads(original)
    doc["//"] = "edited by hand"
    main.write_text(json.dumps(doc))
    state, note = status_rows(deployed)["08-nebari-tf-extensions"]
    # `doit deploy` renders over the edit, so the stage stays applied; the edit is named.
    assert state == "applied" and note.startswith("main.tf.json: edited since it was rendered")
    why = deployed.doit("why", "08-nebari-tf-extensions").stdout
    assert "note: main.tf.json: edited since it was rendered" in why
    assert "--disable-render` would apply the edit" in why
    out = deployed.doit("deploy", "--disable-render").stdout
    assert "--disable-render: on-disk files differ from a fresh render: main.tf.json" in out
    assert deployed.applied_in_last_run() == {"08-nebari-tf-extensions"}
    out = deployed.doit("deploy").stdout
    assert "overwrote hand edits of main.tf.json" in out
    assert main.read_text() == original
    assert deployed.applied_in_last_run() == {"08-nebari-tf-extensions"}  # back to the render
