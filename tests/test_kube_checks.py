"""Checks after a stage and the Kubernetes version preflight, against the FAKE API server.

`tests/kubefake.py` stands in for a Kubernetes API server (none can run on these machines).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubefake import FakeKube

from stagegraph.errors import DeployError
from stagegraph.kube import checks
from stagegraph.kube.checks import KubeCheckError, KubernetesVersionError
from stagegraph.kube.client import KubeClient, KubeTarget, connect
from stagegraph.lockfile import load_lockfile
from stagegraph.stage import CheckContext, NoOutputs, Upstream
from stagegraph.stages import stage_checks
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.views import PinView

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube() as server:
        yield server


@pytest.fixture
def kubeconfig(fake: FakeKube, tmp_path: Path) -> Path:
    return fake.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def client(kubeconfig: Path) -> Iterator[KubeClient]:
    with connect(KubeTarget(str(kubeconfig), "fake")) as c:
        yield c


def one_line(err: pytest.ExceptionInfo[Exception]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def service(fake: FakeKube, status: dict[str, Any] | None = None) -> None:
    fake.add_namespace("dev")
    fake.apply_as(
        "helm",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "traefik", "namespace": "dev"},
            "spec": {"type": "LoadBalancer"},
        },
    )
    if status is not None:
        fake.set_status("v1", "services", "dev", "traefik", status)


def deployment(fake: FakeKube, replicas: int = 1) -> None:
    fake.add_namespace("dev")
    fake.apply_as(
        "helm",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "hub", "namespace": "dev"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "hub"}},
                "template": {"metadata": {"labels": {"app": "hub"}}},
            },
        },
    )


# --- the checks ---------------------------------------------------------------------------


def test_namespace_exists(fake: FakeKube, client: KubeClient) -> None:
    with pytest.raises(KubeCheckError) as err:
        checks.namespace_exists(client, "dev")
    assert one_line(err) == (
        f"namespace dev does not exist in the cluster at {fake.url}; "
        "re-apply 03-kubernetes-initialize (kubectl get namespaces lists what is there)"
    )
    fake.add_namespace("dev")
    checks.namespace_exists(client, "dev")


def test_service_address_needs_a_load_balancer_ingress(fake: FakeKube, client: KubeClient) -> None:
    with pytest.raises(KubeCheckError, match=r"^service dev/traefik does not exist; "):
        checks.service_address(client, "dev", "traefik")
    service(fake)
    with pytest.raises(KubeCheckError) as err:
        checks.service_address(client, "dev", "traefik")
    assert one_line(err).startswith("service dev/traefik has no load balancer address yet; ")
    fake.set_status(
        "v1", "services", "dev", "traefik", {"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}}
    )
    assert checks.service_address(client, "dev", "traefik") == "172.18.255.200"
    fake.set_status(
        "v1", "services", "dev", "traefik", {"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}
    )
    assert checks.service_address(client, "dev", "traefik") == "lb.example"


def test_deployment_ready_counts_ready_replicas_of_the_current_rollout(
    fake: FakeKube, client: KubeClient
) -> None:
    deployment(fake, replicas=2)
    with pytest.raises(KubeCheckError) as err:
        checks.deployment_ready(client, "dev", "hub")
    assert one_line(err) == (
        "deployment dev/hub is not ready: 0 of 2 replica(s) ready, rollout not observed yet; "
        "see kubectl -n dev describe deployment hub"
    )
    fake.set_status(
        "apps/v1",
        "deployments",
        "dev",
        "hub",
        {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 2},
    )
    with pytest.raises(KubeCheckError, match=r"1 of 2 replica\(s\) ready;"):
        checks.deployment_ready(client, "dev", "hub")
    fake.set_status(
        "apps/v1",
        "deployments",
        "dev",
        "hub",
        {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2},
    )
    checks.deployment_ready(client, "dev", "hub")


def test_wait_for_retries_until_the_check_passes() -> None:
    answers = iter([KubeCheckError("not yet"), KubeCheckError("not yet"), "10.0.0.1"])

    def check() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert checks.wait_for(check, timeout=60, interval=0) == "10.0.0.1"

    def never() -> None:
        raise KubeCheckError("never")

    with pytest.raises(KubeCheckError, match="never"):
        checks.wait_for(never, timeout=0)


@pytest.mark.parametrize(
    ("git_version", "expected"),
    [("v1.31.4", "1.31"), ("v1.30.2-eks-7f9249a", "1.30"), ("v1.29.0+k3s1", "1.29")],
)
def test_version_at_or_below_the_maximum_passes(
    fake: FakeKube, client: KubeClient, git_version: str, expected: str
) -> None:
    fake.git_version = git_version
    assert checks.kubernetes_version_check(client, "1.31") == expected


def test_version_newer_than_the_maximum_is_refused_clearly(fake: FakeKube, client: KubeClient) -> None:
    fake.git_version = "v1.32.1"
    with pytest.raises(KubernetesVersionError) as err:
        checks.kubernetes_version_check(client, "1.31")
    assert one_line(err) == (
        f"the cluster at {fake.url} runs Kubernetes 1.32, newer than 1.31, the newest this release is "
        "tested against (lockfiles/versions.yaml: kubernetes.max_version); use a cluster of 1.31 or "
        "older, or raise kubernetes.max_version once you have tested 1.32"
    )


# --- the stage adapters, as the engine calls them -----------------------------------------


def _ctx(kubeconfig: Path, outputs: Any = None, with_pins: bool = False) -> CheckContext:
    infra = InfrastructureOutputs(
        kubeconfig_path=str(kubeconfig), kube_context="fake", cluster_name="test", node_selectors={}
    )
    upstream = {"02-infrastructure": infra, "03-kubernetes-initialize": InitializeOutputs(namespace="dev")}
    lines: list[str] = []
    return CheckContext(
        stage="03-kubernetes-initialize",
        provider="existing",
        upstream=Upstream("03-kubernetes-initialize", upstream),
        outputs=outputs if outputs is not None else NoOutputs(),
        line=lines.append,
        pins=PinView(LOCK, LOCK.keys(), "03-kubernetes-initialize", "lockfiles/versions.yaml")
        if with_pins
        else None,
    )


def test_stage_checks_read_the_cluster_from_the_typed_outputs(
    fake: FakeKube, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage_checks, "ADDRESS_WAIT_S", 0.0)
    monkeypatch.setattr(stage_checks, "ROLLOUT_WAIT_S", 0.0)
    with pytest.raises(KubeCheckError, match=r"^namespace dev does not exist"):
        stage_checks.namespace_check(_ctx(kubeconfig, InitializeOutputs(namespace="dev")))
    service(fake, {"loadBalancer": {"ingress": [{"ip": "10.1.2.3"}]}})
    stage_checks.namespace_check(_ctx(kubeconfig, InitializeOutputs(namespace="dev")))
    stage_checks.ingress_check(_ctx(kubeconfig))
    with pytest.raises(KubeCheckError, match=r"^deployment dev/hub does not exist"):
        stage_checks.hub_check(_ctx(kubeconfig))


def test_version_preflight_reads_the_maximum_from_the_lockfile(fake: FakeKube, kubeconfig: Path) -> None:
    limit = LOCK.kubernetes.max_version.version
    major, minor = (int(p) for p in limit.split("."))
    fake.git_version = f"v{major}.{minor}.0"
    stage_checks.kubernetes_version_preflight(_ctx(kubeconfig, with_pins=True))
    fake.git_version = f"v{major}.{minor + 1}.0"
    with pytest.raises(
        KubernetesVersionError, match=rf"runs Kubernetes {major}\.{minor + 1}, newer than {limit}"
    ):
        stage_checks.kubernetes_version_preflight(_ctx(kubeconfig, with_pins=True))


# --- the engine runs the preflight before the stage, never in the sandbox -------------------


def _project(tmp_path: Path, kubeconfig: Path) -> Any:
    from stagegraph.project import Project
    from stagegraph.records import StageRecord

    root = tmp_path / "project"
    (root / "lockfiles").mkdir(parents=True)
    shutil.copy(ROOT / "lockfiles" / "versions.yaml", root / "lockfiles" / "versions.yaml")
    config = yaml.safe_load(
        (ROOT / "tests" / "fixtures" / "configs" / "nebari-existing.happy.yaml").read_text()
    )
    # Local state and records: this is about the preflight, not where state is shared
    # (`type: remote` on existing keeps records in the cluster, test_shared_state.py).
    config["terraform_state"] = {"type": "local"}
    (root / "nebari-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    project = Project.discover(root, None, env={})
    now = datetime.now(UTC)
    outputs = {
        "kubeconfig_path": str(kubeconfig),
        "kube_context": "fake",
        "cluster_name": "c",
        "node_selectors": {},
    }
    project.records.put(
        StageRecord(
            stage="02-infrastructure",
            status="applied",
            fingerprint="x",
            inputs={},
            outputs=outputs,
            applied_at=now,
            attempted_at=now,
            duration_s=0.0,
            error=None,
            log=None,
            runner=None,
            init_digest=None,
            plan=None,
        )
    )
    return project


def test_engine_refuses_a_too_new_cluster_before_applying_the_first_cluster_stage(
    fake: FakeKube, kubeconfig: Path, tmp_path: Path
) -> None:
    from stagegraph.console import Console
    from stagegraph.deploy import Runtime, apply_stage
    from stagegraph.render import render_stage, write_stage
    from stagegraph.summary import RunSummary

    project = _project(tmp_path, kubeconfig)
    stage = project.graph["03-kubernetes-initialize"]
    write_stage(project.output_root, render_stage(stage, project.config, project.lock, project.lockfile_name))
    rt = Runtime(project, Console(stream=io.StringIO(), colour=False), RunSummary("deploy"))
    fake.git_version = "v1.99.0"
    with pytest.raises(DeployError) as err:
        apply_stage(rt, "03-kubernetes-initialize")
    assert one_line(err).startswith(
        "stage 03-kubernetes-initialize: preflight failed, nothing applied: the cluster at "
        f"{fake.url} runs Kubernetes 1.99, newer than {project.lock.kubernetes.max_version.version}"
    )
    assert "lockfiles/versions.yaml: kubernetes.max_version" in str(err.value)
    # Terraform never ran: no state, no working directory, and the record says why.
    assert not any(project.stage_dir(stage).glob("terraform.tfstate*"))
    assert not (project.stage_dir(stage) / ".terraform").exists()
    record = project.records.get("03-kubernetes-initialize")
    assert record is not None and record.status == "failed" and "preflight failed" in (record.error or "")
    assert [m for m, p, _ in fake.requests if p == "/version"] == ["GET"]
