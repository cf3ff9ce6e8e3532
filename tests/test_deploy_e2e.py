"""End to end: `doit deploy` on the sandbox provider, through real Terraform.

The sandbox is the stand-in for a cluster: every stage is applied by Terraform with local
state, with `terraform_data` twins in place of cluster resources. What is checked is what a
user would check: which stages applied, what the records and `doit status` say, exit
codes and the one-line errors.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from sandboxproject import BUILTIN_STAGE_NAMES, SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ALL = BUILTIN_STAGE_NAMES


def test_first_deploy_applies_every_stage_and_records_typed_outputs(deployed: SandboxProject) -> None:
    records = deployed.records()
    assert sorted(records) == sorted(ALL)
    assert all(r["status"] == "applied" for r in records.values())
    ingress = records["04-kubernetes-ingress"]["outputs"]
    assert ingress == {
        "load_balancer_address": "127.0.0.1",
        "domain": "demo.example.com",
        "certificate_type": "self-signed",
        # base64 of the sandbox's stand-in certificate, through the real base64encode
        "certificate_ca": "c2FuZGJveC1jZXJ0aWZpY2F0ZQ==",
    }
    infra = records["02-infrastructure"]["outputs"]
    assert infra["kube_context"] == "kind-demo-dev" and infra["kubeconfig_path"].endswith("/kubeconfig")


def test_rendered_stage_has_a_variables_file_for_hand_deploys(deployed: SandboxProject) -> None:
    stage_dir = deployed.root / "stages" / "04-kubernetes-ingress"
    tfvars = json.loads((stage_dir / "stagegraph.tfvars.json").read_text())
    assert tfvars == {
        "kube_context": "kind-demo-dev",
        "kubeconfig_path": tfvars["kubeconfig_path"],
        "namespace": "dev",
    }
    declared = json.loads((stage_dir / "variables.tf.json").read_text())["variable"]
    assert set(declared) == set(tfvars)
    state = stage_dir / "terraform.tfstate"
    assert state.exists() and state.stat().st_mode & 0o077 == 0


def test_second_deploy_applies_nothing(deployed: SandboxProject) -> None:
    proc = deployed.doit("deploy")
    assert deployed.applied_in_last_run() == set()
    assert all(s == "skipped" for s in deployed.statuses().values())
    assert f"deploy: {len(ALL)} skipped" in proc.stdout


def test_status_view(deployed: SandboxProject) -> None:
    out = deployed.doit("status").stdout
    for name in ALL:
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert " applied " in line


def test_list_shows_stages_in_runtime_order_with_descriptions(deployed: SandboxProject) -> None:
    out = deployed.doit("list").stdout.splitlines()
    names = [line.split()[0] for line in out if line[:2].isdigit()]
    assert names == ALL
    assert any("Traefik" in line for line in out if line.startswith("04-kubernetes-ingress"))


@pytest.fixture
def fresh(tmp_path: Path) -> SandboxProject:
    return SandboxProject.create(tmp_path / "p")


def test_one_value_change_applies_exactly_the_stages_that_read_it(fresh: SandboxProject) -> None:
    fresh.doit("deploy")
    fresh.edit_config(lambda c: c["theme"]["jupyterhub"].update(hub_title="Changed title"))
    fresh.doit("deploy")
    # Only 07 reads `theme`; its outputs do not change, so 08 and 11 stay skipped.
    assert fresh.applied_in_last_run() == {"07-kubernetes-services"}


def test_changed_upstream_output_reapplies_only_consumers(fresh: SandboxProject) -> None:
    fresh.doit("deploy")
    fresh.edit_config(lambda c: c.update(domain="other.example.com"))
    why = fresh.doit("why", "04-kubernetes-ingress").stdout
    assert "config:domain: changed" in why and "file:main.tf.json: changed" in why
    fresh.doit("deploy")
    # 04 outputs the domain: 05, 07, 08 take it as a variable; 05's URL output feeds 06;
    # 07's URLs feed 11. 01-03 and 10 read none of it.
    assert fresh.applied_in_last_run() == {
        "04-kubernetes-ingress",
        "05-kubernetes-keycloak",
        "06-kubernetes-keycloak-configuration",
        "07-kubernetes-services",
        "08-nebari-tf-extensions",
        "11-kubernetes-kuberhealthy-healthchecks",
    }


def test_stop_at_and_named_stage(fresh: SandboxProject) -> None:
    fresh.doit("deploy", "--stop-at", "03-kubernetes-initialize")
    assert sorted(fresh.records()) == ALL[:3]
    fresh.doit("10-kubernetes-kuberhealthy")
    assert sorted(fresh.records()) == [*ALL[:3], "10-kubernetes-kuberhealthy"]
    proc = fresh.doit("deploy", "--stop-at", "99-nope", check=False)
    assert proc.returncode != 0
    assert "unknown stage '99-nope'; known stages: 01-terraform-state" in proc.stdout


def test_terraform_failure_stops_the_run_and_the_rerun_resumes_there(fresh: SandboxProject) -> None:
    fresh.doit("render")
    fresh.doit("deploy", "--stop-at", "04-kubernetes-ingress")
    main = fresh.root / "stages" / "05-kubernetes-keycloak" / "main.tf.json"
    doc = json.loads(main.read_text())
    doc["output"]["keycloak_url"]["value"] = "${terraform_data.nope.output}"
    main.write_text(json.dumps(doc))
    proc = fresh.doit("-n", "1", "deploy", "--disable-render", check=False)
    assert proc.returncode != 0
    assert "--disable-render: on-disk files differ from a fresh render: main.tf.json" in proc.stdout
    error = [line for line in proc.stdout.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "terraform apply failed" in error[0] and ".log" in error[0]
    records = fresh.records()
    assert records["05-kubernetes-keycloak"]["status"] == "failed"
    for after in ALL[5:8] + ALL[9:]:  # everything downstream of 05 was not applied
        assert after not in records, after
    assert fresh.statuses()["05-kubernetes-keycloak"] == "failed"
    assert fresh.last_run()["ok"] is False
    done = {k for k, r in records.items() if r["status"] == "applied"}  # 01-04, maybe 10
    # A fresh render repairs the file; the rerun starts at 05 and redoes nothing done.
    fresh.doit("deploy")
    applied = fresh.applied_in_last_run()
    assert "05-kubernetes-keycloak" in applied and applied.isdisjoint(done)
    assert applied | done == set(ALL)


def test_sigkill_mid_run_loses_nothing(fresh: SandboxProject) -> None:
    proc = fresh.popen("-n", "1", "deploy")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        records = fresh.records() if (fresh.state_dir / "records").exists() else {}
        if sum(r["status"] == "applied" for r in records.values()) >= 3:
            break
        time.sleep(0.05)
    import os

    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {k for k, r in fresh.records().items() if r["status"] == "applied"}
    assert len(before) >= 3
    fresh.doit("deploy")
    applied = fresh.applied_in_last_run()
    assert applied.isdisjoint(before), "stages recorded before the kill were applied again"
    assert applied | before == set(ALL)


def test_concurrent_deploy_is_refused_at_once(fresh: SandboxProject) -> None:
    first = fresh.popen("-n", "1", "deploy")
    try:
        deadline = time.monotonic() + 60
        while not (fresh.state_dir / "lock.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        t0 = time.monotonic()
        second = fresh.doit("deploy", check=False)
        waited = time.monotonic() - t0
        assert second.returncode != 0
        assert "another stagegraph run holds the lock: 'deploy'" in second.stdout
        assert f"pid {first.pid}" in second.stdout
        assert waited < 30  # refused, not queued behind a whole deploy
    finally:
        first.wait(timeout=600)
    assert first.returncode == 0


def test_destroy_in_reverse_order_stops_on_failure_resumes_and_keeps(fresh: SandboxProject) -> None:
    fresh.doit("deploy")
    # Break 07's destroy where only Terraform sees it (the render is checked before any
    # stage is destroyed, see test_destroy_preflight): a hand-added file with a reference
    # to nothing.
    broken = fresh.root / "stages" / "07-kubernetes-services" / "zz-by-hand.tf.json"
    broken.write_text(json.dumps({"output": {"x": {"value": "${terraform_data.nope.output}"}}}))
    proc = fresh.doit("-n", "1", "destroy", "--keep", "02-infrastructure", check=False)
    assert proc.returncode != 0
    records = fresh.records()
    # dependents of 07 went first; 07 failed; nothing it depends on was touched
    assert records["11-kubernetes-kuberhealthy-healthchecks"]["status"] == "destroyed"
    assert records["08-nebari-tf-extensions"]["status"] == "destroyed"
    assert records["07-kubernetes-services"]["status"] == "failed"
    for name in ALL[:6]:
        assert records[name]["status"] == "applied", name
    broken.unlink()
    fresh.doit("-n", "1", "destroy", "--keep", "02-infrastructure")
    records = fresh.records()
    order = [s["stage"] for s in fresh.last_run()["stages"] if s["status"] == "destroyed"]
    assert "11-kubernetes-kuberhealthy-healthchecks" not in order  # already gone: not redone
    for name in [
        "07-kubernetes-services",
        "06-kubernetes-keycloak-configuration",
        "05-kubernetes-keycloak",
        "04-kubernetes-ingress",
        "03-kubernetes-initialize",
        "10-kubernetes-kuberhealthy",
    ]:
        assert records[name]["status"] == "destroyed", name
    for name in ("01-terraform-state", "02-infrastructure"):  # kept, with what it needs
        assert records[name]["status"] == "applied"
    # Reverse dependency order across both runs: every stage went after all its dependents.
    from stagegraph.graph import build_graph
    from stagegraph.stages.builtin import BUILTIN_STAGES

    graph = build_graph(BUILTIN_STAGES)
    when = {k: r["attempted_at"] for k, r in records.items() if r["status"] == "destroyed"}
    for stage in graph.stages:
        for dep in stage.depends_on:
            if stage.name in when and dep in when:
                assert when[stage.name] <= when[dep], (stage.name, dep)


def test_plans_flow_through_the_graph_and_apply_plan_is_strict(fresh: SandboxProject) -> None:
    # Nothing is applied: each stage is planned against its upstreams' planned outputs, so
    # no mock stands in anywhere. 02's load-balancer pool is read from the kind network,
    # which exists only once 02 applied: 03 is planned "after 02-infrastructure applies".
    proc = fresh.doit("-n", "1", "plan")
    assert "mock" not in proc.stdout
    assert fresh.statuses() == dict.fromkeys(ALL, "planned")
    assert "after 02-infrastructure applies" in proc.stdout
    # apply_plan applies what was planned on known values and refuses the deferred plan.
    proc = fresh.doit("-n", "1", "apply_plan", check=False)
    assert proc.returncode != 0
    assert "03-kubernetes-initialize: its saved plan was made before 02-infrastructure applied" in proc.stdout
    assert {"01-terraform-state", "02-infrastructure"} <= fresh.applied_in_last_run()
    # Planned again, nothing is deferred any more, and the saved plans apply to the end.
    proc = fresh.doit("-n", "1", "plan")
    assert "after 02-infrastructure applies" not in proc.stdout
    fresh.doit("-n", "1", "apply_plan")
    assert sorted(fresh.records()) == sorted(ALL)
    fresh.doit("deploy")
    assert fresh.applied_in_last_run() == set()  # the plans applied what a deploy would
    # A plan whose inputs changed since it was made is refused.
    fresh.edit_config(lambda c: c.update(domain="planned.example.com"))
    fresh.doit("-n", "1", "plan")
    fresh.edit_config(lambda c: c.update(domain="again.example.com"))
    fresh.doit("render")
    proc = fresh.doit("-n", "1", "apply_plan", check=False)
    assert proc.returncode != 0
    assert "04-kubernetes-ingress: inputs changed since its plan was made" in proc.stdout
    # So is one made against mock outputs (a plan record says so).
    fresh.doit("-n", "1", "plan")
    path = fresh.state_dir / "records" / "04-kubernetes-ingress.json"
    record = json.loads(path.read_text())
    record["plan"]["used_mock"] = True
    path.write_text(json.dumps(record))
    proc = fresh.doit("-n", "1", "apply_plan:04-kubernetes-ingress", check=False)
    assert proc.returncode != 0
    assert "04-kubernetes-ingress: its saved plan was made against mock outputs" in proc.stdout
    fresh.doit("-n", "1", "plan")
    fresh.doit("-n", "1", "apply_plan:04-kubernetes-ingress")
    assert fresh.records()["04-kubernetes-ingress"]["outputs"]["domain"] == "again.example.com"


@pytest.mark.parametrize("terraform", ["embedded"])
def test_embedded_terraform_deploys_on_a_machine_without_terraform(tmp_path: Path, terraform: str) -> None:
    project = SandboxProject.create(tmp_path / "e", terraform=terraform)
    project.doit("deploy", "--stop-at", "04-kubernetes-ingress")
    runners = {r["runner"] for r in project.records().values()}
    assert runners and all(r.startswith("embedded terraform") for r in runners)
