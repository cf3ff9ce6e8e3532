"""Stages 10 (Kuberhealthy) and 11 (its HTTP checks): renders, goldens, and applies.

Real clusters are stood in for by `tests/kubefake.py`, a FAKE Kubernetes API server (none
can run on these machines); the sandbox runs the stages' Terraform twins through real
Terraform, end to end through `doit`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from goldenfiles import read_golden, write_golden
from kubefake import FakeKube
from sandboxproject import SandboxProject

from stagegraph.configfile import load_config, parse_config
from stagegraph.driver import StageContext
from stagegraph.errors import DeployError, RenderError
from stagegraph.lockfile import load_lockfile
from stagegraph.render import render_stage, write_stage
from stagegraph.schema.config import NebariConfig
from stagegraph.stage import CheckContext, Stage, Upstream
from stagegraph.stages import healthchecks, kuberhealthy, stage_checks
from stagegraph.stages.infrastructure import InfrastructureOutputs

ROOT = Path(__file__).resolve().parents[1]
LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
GOLDEN = ROOT / "tests" / "golden" / "kuberhealthy-sandbox-enabled"
EXISTING = ROOT / "tests" / "fixtures" / "configs" / "explicit-existing.happy.yaml"
STAGES = (kuberhealthy.STAGE, healthchecks.STAGE)


def sandbox_config(**changes: Any) -> NebariConfig:
    """The repository's sandbox config with health checks on, plus `changes` (dotted keys)."""
    raw = yaml.safe_load((ROOT / "nebari-config.yaml").read_text())
    raw.setdefault("monitoring", {})["healthchecks"] = {"enabled": True}
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return parse_config(yaml.safe_dump(raw), "nebari-config.yaml")


def files_of(stage: Stage, config: NebariConfig) -> dict[str, bytes]:
    return dict(render_stage(stage, config, LOCK, "lockfiles/versions.yaml").files)


def objects_of(stage: Stage, config: NebariConfig) -> dict[str, dict[str, Any]]:
    return {n: yaml.safe_load(d) for n, d in files_of(stage, config).items() if n.endswith(".yaml")}


# --- renders ---------------------------------------------------------------------------------


def test_kuberhealthy_renders_crds_and_a_namespaced_operator() -> None:
    objects = objects_of(kuberhealthy.STAGE, sandbox_config())
    crds = {n: o for n, o in objects.items() if n.startswith("crds/")}
    assert sorted(o["metadata"]["name"] for o in crds.values()) == [
        "khchecks.comcast.github.io",
        "khjobs.comcast.github.io",
        "khstates.comcast.github.io",
    ]
    for crd in crds.values():
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        (version,) = crd["spec"]["versions"]
        assert version["served"] and version["storage"]
        schema = version["schema"]["openAPIV3Schema"]
        assert schema["type"] == "object"
        assert schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] is True
    kinds = {o["kind"]: o for n, o in objects.items() if n.startswith("manifests/")}
    assert sorted(kinds) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == LOCK.images["kuberhealthy"].ref
    assert all(
        o["metadata"].get("namespace") == "dev"
        for o in kinds.values()
        if o["kind"] not in ("ClusterRole", "ClusterRoleBinding")
    )
    assert kinds["ClusterRoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "kuberhealthy", "namespace": "dev"}
    ]
    assert kinds["ClusterRole"]["metadata"]["name"] == "kuberhealthy-dev"  # two platforms can share a cluster


def test_one_http_check_per_enabled_service() -> None:
    lets_encrypt = {"certificate": {"type": "lets-encrypt", "acme_email": "ops@example.com"}}
    objects = objects_of(healthchecks.STAGE, sandbox_config(**lets_encrypt))
    urls = {o["metadata"]["name"]: _env(o)["CHECK_URL"] for o in objects.values()}
    assert urls == {
        "jupyterhub-http-check": "https://demo.example.com/hub/api/",
        "conda-store-http-check": "https://demo.example.com/conda-store/api/v1/",
        "dask-gateway-http-check": "https://demo.example.com/gateway/api/version",
        "argo-workflows-http-check": "https://demo.example.com/argo/",
        "grafana-http-check": "https://demo.example.com/monitoring/api/health",
        "keycloak-http-check": "https://demo.example.com/auth/realms/nebari/.well-known/openid-configuration",
    }
    (container,) = next(iter(objects.values()))["spec"]["podSpec"]["containers"]
    assert container["image"] == LOCK.images["kuberhealthy_http_check"].ref
    fewer = objects_of(
        healthchecks.STAGE, sandbox_config(**{"argo_workflows.enabled": False, "jhub_apps.enabled": True})
    )
    assert sorted(o["metadata"]["name"] for o in fewer.values()) == [
        "conda-store-http-check",
        "dask-gateway-http-check",
        "grafana-http-check",
        "jhub-apps-http-check",
        "jupyterhub-http-check",
        "keycloak-http-check",
    ]


def test_with_a_self_signed_certificate_the_checks_probe_in_cluster_addresses() -> None:
    """Issue 11, defect 10: a probe through the public URL could only fail TLS verification."""
    objects = objects_of(healthchecks.STAGE, sandbox_config())  # the default: self-signed
    urls = {o["metadata"]["name"]: _env(o)["CHECK_URL"] for o in objects.values()}
    assert urls == {
        "jupyterhub-http-check": "http://proxy-public.dev.svc:80/hub/api/",
        "conda-store-http-check": "http://conda-store-server.dev.svc:8080/conda-store/api/v1/",
        "dask-gateway-http-check": "http://traefik-dask-gateway.dev.svc:80/gateway/api/version",
        "argo-workflows-http-check": "http://argo-workflows-server.dev.svc:2746/",
        "grafana-http-check": "http://kube-prometheus-stack-grafana.dev.svc:80/monitoring/api/health",
        "keycloak-http-check": "http://keycloak-keycloakx-http.dev.svc:80/auth/realms/nebari/.well-known/openid-configuration",
    }


def _env(check: dict[str, Any]) -> dict[str, str]:
    (container,) = check["spec"]["podSpec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_disabled_renders_nothing_to_apply_and_outputs_stay_valid() -> None:
    config = sandbox_config(**{"monitoring.healthchecks.enabled": False})
    for stage in STAGES:
        files = files_of(stage, config)
        assert not [n for n in files if n.endswith(".yaml")]
        assert "Disabled (monitoring.healthchecks.enabled is false)" in files["README.md"].decode()
        main = json.loads(files["main.tf.json"])
        assert "resource" not in main
    outputs = json.loads(files_of(kuberhealthy.STAGE, config)["main.tf.json"])["output"]
    assert outputs["crds"]["value"] == [] and outputs["namespace"]["value"] == "${var.namespace}"
    assert json.loads(files_of(healthchecks.STAGE, config)["main.tf.json"])["output"]["checks"]["value"] == []


def test_sandbox_twin_carries_each_manifest_as_its_input() -> None:
    config = sandbox_config()
    files = files_of(kuberhealthy.STAGE, config)
    twins = json.loads(files["main.tf.json"])["resource"]["terraform_data"]
    manifests = {n: yaml.safe_load(d) for n, d in files.items() if n.endswith(".yaml")}
    assert {t["input"]["metadata"]["name"] + ":" + t["input"]["kind"] for t in twins.values()} == {
        m["metadata"]["name"] + ":" + m["kind"] for m in manifests.values()
    }
    assert twins["manifests_30_deployment"]["input"] == manifests["manifests/30-deployment.yaml"]
    variables = json.loads(files["variables.tf.json"])["variable"]
    assert sorted(variables) == ["kube_context", "kubeconfig_path", "namespace"]


def test_a_real_cluster_render_is_yaml_only() -> None:
    config = load_config(EXISTING)
    for stage in STAGES:
        names = sorted(files_of(stage, config))
        assert not [n for n in names if n.endswith(".json")], names
        assert "README.md" in names


def test_checks_without_a_domain_are_refused_at_render() -> None:
    with pytest.raises(RenderError) as err:
        files_of(healthchecks.STAGE, sandbox_config(domain=None))
    assert str(err.value) == (
        "stage 11-kubernetes-kuberhealthy-healthchecks: monitoring.healthchecks.enabled needs domain set "
        "(each check probes https://<domain>/...); set domain in nebari-config.yaml or disable the health checks"
    )


def test_golden_sandbox_render_with_health_checks(update_golden: bool) -> None:
    """Goldens of 10/11 with health checks on (the shared goldens have them off in the sandbox)."""
    config = sandbox_config()
    files = {f"{s.name}/{n}": d for s in STAGES for n, d in files_of(s, config).items()}
    if update_golden:
        write_golden(GOLDEN, files)
    on_disk = read_golden(GOLDEN)
    assert sorted(on_disk) == sorted(files), "rerun with --update-golden and review"
    for rel, data in files.items():
        assert on_disk[rel] == data, (
            f"{rel} differs from {GOLDEN.name}; rerun with --update-golden and review"
        )


# --- applied to a cluster (the fake) ------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube() as server:
        server.add_namespace("prod")
        yield server


class Deployment:
    """Stages 10 and 11 rendered for a real provider and driven as the engine drives them."""

    def __init__(self, fake: FakeKube, root: Path) -> None:
        self.fake = fake
        self.root = root
        self.kubeconfig = fake.write_kubeconfig(root / "kubeconfig")
        self.raw = yaml.safe_load(EXISTING.read_text())
        self.lines: list[str] = []

    @property
    def config(self) -> NebariConfig:
        return parse_config(yaml.safe_dump(self.raw), "nebari-config.yaml")

    def render(self) -> None:
        for stage in STAGES:
            write_stage(
                self.root / "rendered", render_stage(stage, self.config, LOCK, "lockfiles/versions.yaml")
            )

    def ctx(self, stage: Stage, **variables: Any) -> StageContext:
        def no_terraform() -> Any:
            raise AssertionError("no Terraform on a real cluster")

        return StageContext(
            stage=stage,
            stage_dir=self.root / "rendered" / stage.name,
            provider="existing",
            variables={
                "kubeconfig_path": str(self.kubeconfig),
                "kube_context": "fake",
                "namespace": "prod",
                **variables,
            },
            secret_env={},
            record=None,
            log_path=self.root / "logs" / f"{stage.name}.log",
            line=self.lines.append,
            terraform_binary=no_terraform,
        )

    def urls(self) -> dict[str, str]:
        base = "https://lab.example.org"
        names = [
            o["metadata"]["labels"]["stagegraph/service"]
            for o in objects_of(healthchecks.STAGE, self.config).values()
        ]
        return {n: base + healthchecks.SERVICES[n][0] for n in names}

    def apply(self, stage: Stage, **variables: Any) -> dict[str, Any]:
        assert stage.driver is not None
        raw = stage.driver.apply(self.ctx(stage, **variables)).outputs
        return stage.outputs.model_validate(raw).model_dump()

    def versions(self) -> dict[tuple[str, str, str | None, str], str]:
        return {k: v["metadata"]["resourceVersion"] for k, v in self.fake.objects.items()}


def test_apply_reapply_prune_and_destroy_on_a_cluster(fake: FakeKube, tmp_path: Path) -> None:
    d = Deployment(fake, tmp_path)
    d.render()
    out10 = d.apply(kuberhealthy.STAGE)
    assert out10 == {
        "namespace": "prod",
        "crds": ["khchecks.comcast.github.io", "khjobs.comcast.github.io", "khstates.comcast.github.io"],
    }
    assert fake.names("apiextensions.k8s.io/v1", "customresourcedefinitions") == out10["crds"]
    dep = fake.get("apps/v1", "deployments", "prod", "kuberhealthy")
    assert dep is not None
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == LOCK.images["kuberhealthy"].ref
    assert (
        fake.get("rbac.authorization.k8s.io/v1", "clusterrolebindings", None, "kuberhealthy-prod") is not None
    )

    out11 = d.apply(healthchecks.STAGE, urls=d.urls())
    assert "argo-workflows-http-check" in out11["checks"]
    assert fake.names("comcast.github.io/v1", "khchecks", "prod") == out11["checks"]

    before = d.versions()
    d.apply(kuberhealthy.STAGE)
    d.apply(healthchecks.STAGE, urls=d.urls())
    assert d.versions() == before  # re-applying unchanged manifests writes nothing

    d.raw["argo_workflows"]["enabled"] = False
    d.render()
    out11 = d.apply(healthchecks.STAGE, urls=d.urls())
    assert "argo-workflows-http-check" not in out11["checks"]
    assert fake.names("comcast.github.io/v1", "khchecks", "prod") == out11["checks"]  # pruned

    for stage in reversed(STAGES):
        assert stage.driver is not None
        stage.driver.destroy(d.ctx(stage, urls=d.urls()))
    assert fake.names("comcast.github.io/v1", "khchecks", "prod") == []
    assert fake.names("apiextensions.k8s.io/v1", "customresourcedefinitions") == []
    assert fake.get("apps/v1", "deployments", "prod", "kuberhealthy") is None
    assert fake.get("v1", "namespaces", None, "prod") is not None  # 03's namespace is not ours to delete


def test_checks_that_disagree_with_the_services_stage_are_refused(fake: FakeKube, tmp_path: Path) -> None:
    d = Deployment(fake, tmp_path)
    d.render()
    d.apply(kuberhealthy.STAGE)
    urls = {**d.urls(), "conda_store": "https://lab.example.org/store/"}
    with pytest.raises(DeployError) as err:
        d.apply(healthchecks.STAGE, urls=urls)
    assert str(err.value) == (
        "11-kubernetes-kuberhealthy-healthchecks/manifests/conda-store-http-check.yaml: checks conda_store at "
        "https://lab.example.org/conda-store/ but 07-kubernetes-services reports https://lab.example.org/store/; "
        "re-render both with `doit render` and deploy 07 first"
    )
    assert fake.names("comcast.github.io/v1", "khchecks", "prod") == []  # refused before applying


def test_kuberhealthy_check_waits_for_the_operator(
    fake: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage_checks, "ROLLOUT_WAIT_S", 0.0)
    d = Deployment(fake, tmp_path)
    d.render()
    outputs = kuberhealthy.KuberhealthyOutputs.model_validate(d.apply(kuberhealthy.STAGE))
    infra = InfrastructureOutputs(
        kubeconfig_path=str(d.kubeconfig), kube_context="fake", cluster_name="c", node_selectors={}
    )
    ctx = CheckContext(
        stage=kuberhealthy.NAME,
        provider="existing",
        upstream=Upstream(kuberhealthy.NAME, {"02-infrastructure": infra}),
        outputs=outputs,
        line=d.lines.append,
    )
    assert kuberhealthy.STAGE.check is not None
    with pytest.raises(DeployError, match=r"^deployment prod/kuberhealthy is not ready: 0 of 1 replica"):
        kuberhealthy.STAGE.check(ctx)
    fake.set_status(
        "apps/v1",
        "deployments",
        "prod",
        "kuberhealthy",
        {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1},
    )
    kuberhealthy.STAGE.check(ctx)


# --- the sandbox, end to end through doit and real Terraform --------------------------------


@pytest.mark.e2e
@pytest.mark.slow
def test_sandbox_deploy_applies_the_twins_and_a_second_deploy_is_a_no_op(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "sandbox")
    project.edit_config(lambda c: c.setdefault("monitoring", {}).update(healthchecks={"enabled": True}))
    project.doit("deploy")
    records = project.records()
    assert records["10-kubernetes-kuberhealthy"]["outputs"] == {
        "namespace": "dev",
        "crds": ["khchecks.comcast.github.io", "khjobs.comcast.github.io", "khstates.comcast.github.io"],
    }
    assert records["11-kubernetes-kuberhealthy-healthchecks"]["outputs"]["checks"] == [
        "argo-workflows-http-check",
        "conda-store-http-check",
        "dask-gateway-http-check",
        "grafana-http-check",
        "jupyterhub-http-check",
        "keycloak-http-check",
    ]
    stage_dir = project.stage_dir("10-kubernetes-kuberhealthy")
    assert (stage_dir / "crds" / "khchecks.yaml").exists() and (stage_dir / "terraform.tfstate").exists()
    second = project.doit("deploy")
    assert project.applied_in_last_run() == set(), second.stdout


def test_doit_list_does_not_import_the_kubernetes_client(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "sandbox")
    stdout, modules = project.importtime("-m", "doit", "list")
    assert "10-kubernetes-kuberhealthy" in stdout
    assert "stagegraph.kube.driver" in modules  # the stage modules were imported...
    assert not [
        m for m in modules if m == "kubernetes" or m.startswith("kubernetes.")
    ]  # ...the client was not
