"""Deploy actions left by `doit upgrade`, run against the fake Kubernetes API (tests/kubefake.py).

The fake speaks the subset of the API used here (GET/LIST with label selectors, DELETE,
404 bodies); no real cluster ran these deletions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubefake import FakeKube

from stagegraph.errors import DeployError
from stagegraph.upgrade import deploy_actions
from stagegraph.upgrade.model import StepContext
from stagegraph.upgrade.steps import STEPS

SERVICES = "07-kubernetes-services"


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube() as server:
        server.add_namespace("dev")
        yield server


def actions_of(version: str, config: dict[str, object]) -> list[deploy_actions.DeployAction]:
    ctx = StepContext(
        config=config, config_path=Path("/x/nebari-config.yaml"), decisions={}, start_version="0"
    )
    ctx.version = version
    STEPS[version].run(ctx)
    return ctx.actions


def crd(plural: str, kind: str) -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.argoproj.io"},
        "spec": {
            "group": "argoproj.io",
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [{"name": "v1alpha1", "served": True, "storage": True}],
        },
    }


def test_kubernetes_deletions_run_before_the_stage_and_are_recorded(fake: FakeKube, tmp_path: Path) -> None:
    fake.apply_as("helm", crd("workflows", "Workflow"))
    fake.apply_as(
        "helm",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "argo-admin", "namespace": "dev"},
        },
    )
    for name, labels in (
        ("node-exporter-x", {"app": "prometheus-node-exporter"}),
        ("keep-me", {"app": "other"}),
    ):
        fake.apply_as(
            "helm",
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"name": name, "namespace": "dev", "labels": labels},
            },
        )
    state = tmp_path / "state"
    actions = actions_of("2023.4.2", {"namespace": "dev"}) + [
        a for a in actions_of("2024.6.1", {"namespace": "dev"}) if a.kind == "kubernetes-delete"
    ]
    deploy_actions.add(state, actions)
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    lines: list[str] = []
    deploy_actions.run(
        state,
        SERVICES,
        "before",
        sandbox=False,
        delete=deploy_actions.kube_deleter(str(kubeconfig), "fake"),
        state_file=None,
        line=lines.append,
    )
    assert (
        fake.get("apiextensions.k8s.io/v1", "customresourcedefinitions", None, "workflows.argoproj.io")
        is None
    )
    assert fake.get("v1", "serviceaccounts", "dev", "argo-admin") is None
    assert fake.names("apps/v1", "daemonsets", "dev") == ["keep-me"]
    recorded = {a.id: a for a in deploy_actions.load(state)}
    argo = recorded["2023.4.2-argo-crds"]
    assert argo.status == "done" and argo.finished_at
    assert argo.note == "deleted customresourcedefinitions/workflows.argoproj.io, serviceaccounts/argo-admin"
    assert recorded["2024.6.1-node-exporter"].note == "deleted daemonsets/node-exporter-x"
    assert deploy_actions.pending(state, SERVICES) == []
    assert any("upgrade action 2023.4.2-argo-crds: deleted" in line for line in lines)
    # The record is a file a person can read afterwards.
    assert json.loads((state / "upgrade-actions.json").read_text())[0]["status"] == "done"


def test_manual_actions_stop_the_stage_until_confirmed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    deploy_actions.add(state, actions_of("2025.10.1", {"namespace": "dev"}))
    keycloak = "05-kubernetes-keycloak"
    with pytest.raises(DeployError) as err:
        deploy_actions.run(state, keycloak, "before", sandbox=False, delete=None, state_file=None, line=print)
    message = str(err.value)
    assert "helm upgrade keycloak" in message and "bitnamilegacy/postgresql" in message
    assert "doit upgrade --confirm 2025.10.1-bitnami-keycloak" in message
    deploy_actions.confirm(state, "2025.10.1-bitnami-keycloak")
    deploy_actions.run(state, keycloak, "before", sandbox=False, delete=None, state_file=None, line=print)
    assert deploy_actions.pending(state, keycloak) == []
    with pytest.raises(Exception, match="already done"):
        deploy_actions.confirm(state, "2025.10.1-bitnami-keycloak")


def test_sandbox_records_actions_as_not_applicable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    deploy_actions.add(state, actions_of("2023.4.2", {"namespace": "dev"}))
    deploy_actions.run(state, SERVICES, "before", sandbox=True, delete=None, state_file=None, line=print)
    (action,) = deploy_actions.load(state)
    assert action.status == "not-applicable" and action.note == "sandbox: no cluster to act on"


def test_azure_state_rename(tmp_path: Path) -> None:
    state_file = tmp_path / "terraform.tfstate"
    state_file.write_text(
        json.dumps(
            {
                "resources": [
                    {"instances": [{"attributes": {"enable_https_traffic_only": True, "name": "sa"}}]}
                ]
            }
        )
    )
    state = tmp_path / "state"
    deploy_actions.add(state, actions_of("2025.2.1", {"provider": "azure"}))
    deploy_actions.run(
        state, "01-terraform-state", "before", sandbox=False, delete=None, state_file=state_file, line=print
    )
    attributes = json.loads(state_file.read_text())["resources"][0]["instances"][0]["attributes"]
    assert attributes == {"https_traffic_only_enabled": True, "name": "sa"}
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"
