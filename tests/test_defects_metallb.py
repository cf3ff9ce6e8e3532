"""Issue 11, defect 6: MetalLB's address pool comes from the kind network's real subnet."""

from __future__ import annotations

from pathlib import Path

import pytest
from checkhelpers import ROOT, doc, render_file
from sandboxproject import SandboxProject

LOCAL = ROOT / "tests" / "fixtures" / "configs" / "nebari-local.happy.yaml"


def test_local_pool_is_computed_from_the_docker_network_kind() -> None:
    main = doc(render_file(LOCAL), "02-infrastructure")
    assert main["data"]["docker_network"]["kind"]["name"] == "kind"
    subnet = main["locals"]["kind_subnet"]
    assert "data.docker_network.kind.ipam_config" in subnet and 'n.gateway != ""' in subnet
    pool = main["resource"]["kubectl_manifest"]["address_pool"]["yaml_body"]
    assert "cidrhost(local.kind_subnet, 356)" in pool and "cidrhost(local.kind_subnet, 406)" in pool
    assert "172.18." not in pool
    assert main["terraform"]["required_providers"]["docker"]["source"] == "kreuzwerker/docker"


@pytest.mark.e2e
def test_sandbox_computes_the_pool_through_terraform(tmp_path: Path) -> None:
    """The same expressions, evaluated by real Terraform on kind's usual 172.18.0.0/16."""
    project = SandboxProject.create(tmp_path / "p")
    project.doit("deploy", "--stop-at", "02-infrastructure")
    outputs = project.records()["02-infrastructure"]["outputs"]
    assert outputs["load_balancer_pool"] == "172.18.1.100-172.18.1.150"
