"""Defects a reading against the real charts found (issue 11: 1, 2 and 5), each caught twice:
the render no longer has it, and the checks flag it if it came back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from checkhelpers import ROOT, check, doc, edited, problem_lines, render_file, render_text

from stagegraph.errors import ConfigError

DEFAULT = ROOT / "nebari-config.yaml"


def _values(stages: Any, stage: str, local: str) -> dict[str, Any]:
    values: dict[str, Any] = doc(stages, stage)["locals"][local]
    return values


# --- 1. Traefik 34 refuses `ports.web.redirectTo` at template time ---------------------------


def test_traefik_redirects_web_with_the_chart_34_syntax() -> None:
    web = _values(render_file(DEFAULT), "04-kubernetes-ingress", "traefik_values")["ports"]["web"]
    assert "redirectTo" not in web
    assert web["redirections"]["entryPoint"] == {"to": "websecure", "scheme": "https", "permanent": True}


def test_helm_values_check_flags_the_removed_redirect_syntax() -> None:
    def old(data: dict[str, Any]) -> None:
        data["locals"]["traefik_values"]["ports"]["web"] = {"redirectTo": {"port": "websecure"}}

    report = check(edited(render_file(DEFAULT), "04-kubernetes-ingress", old), only=["helm-values"])
    assert problem_lines(report) == [
        "04-kubernetes-ingress: helm-values: main.tf.json helm_release.traefik (traefik 34.4.1): "
        "ports.web.redirectTo: not a value of the chart (neither in its values.yaml nor in its "
        "values.schema.json); the chart ignores it"
    ]


# --- 2. keycloakx splices extraEnv after its own env items --------------------------------


def _splice(value: str) -> Any:
    # What the chart's statefulset.yaml does: its own `env:` items, then `tpl . | nindent 12`.
    text = "env:\n  - name: KC_HTTP_RELATIVE_PATH\n    value: /auth\n" + "\n".join(
        "  " + line for line in value.strip("\n").splitlines()
    )
    return yaml.safe_load(text)["env"]


DEV_FILE = "security:\n  keycloak:\n    overrides:\n      database:\n        vendor: dev-file\n"


# The volumes exist only where Keycloak keeps its dev-file database (PostgreSQL needs none).
@pytest.mark.parametrize("key", ["extraEnv", "extraVolumes", "extraVolumeMounts"])
def test_keycloak_extra_lists_splice_into_the_statefulset_as_list_items(key: str) -> None:
    base = DEFAULT.read_text()
    text = base if key == "extraEnv" else base.replace("\nsecurity:\n", "\n" + DEV_FILE, 1)
    assert text != base or key == "extraEnv"
    value = _values(render_text(text), "05-kubernetes-keycloak", "keycloak_values")[key]
    spliced = _splice(value)
    assert len(spliced) > 1 and all(isinstance(item, dict) for item in spliced)
    if key == "extraEnv":
        names = [item["name"] for item in spliced]
        assert "KC_BOOTSTRAP_ADMIN_PASSWORD" in names and "KC_HOSTNAME" in names


def test_helm_values_check_flags_a_json_string_where_the_chart_splices_yaml() -> None:
    def old(data: dict[str, Any]) -> None:
        values = data["locals"]["keycloak_values"]
        values["extraEnv"] = json.dumps([{"name": "KC_HOSTNAME", "value": "${var.base_url}/auth"}])

    report = check(edited(render_file(DEFAULT), "05-kubernetes-keycloak", old), only=["helm-values"])
    lines = problem_lines(report)
    assert len(lines) == 1
    assert lines[0].startswith(
        "05-kubernetes-keycloak: helm-values: main.tf.json helm_release.keycloak (keycloakx 2.5.1): "
        "extraEnv: the chart splices it into its YAML (tpl | nindent) and gets invalid YAML"
    )


# --- 5. ingress.terraform_overrides reach the Service and Traefik's arguments -------------

OVERRIDES = """
ingress:
  terraform_overrides:
    load-balancer-ip: 10.0.0.7
    load-balancer-annotations:
      service.beta.kubernetes.io/aws-load-balancer-internal: "true"
    additional-arguments:
      - --log.level=DEBUG
"""


def _config(extra: str) -> str:
    return DEFAULT.read_text() + extra


def test_ingress_overrides_set_what_nebari_sets() -> None:
    stages = render_text(_config(OVERRIDES))
    values = _values(stages, "04-kubernetes-ingress", "traefik_values")
    assert values["service"]["spec"] == {"loadBalancerIP": "10.0.0.7"}
    assert values["service"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true"
    }
    assert values["additionalArguments"][-1] == "--log.level=DEBUG"
    assert not {"load-balancer-ip", "load-balancer-annotations", "additional-arguments"} & set(values)
    assert problem_lines(check(stages, only=["helm-values"])) == []


def test_helm_values_check_flags_overrides_merged_as_top_level_values() -> None:
    def old(data: dict[str, Any]) -> None:
        data["locals"]["traefik_values"]["load-balancer-ip"] = "10.0.0.7"

    report = check(edited(render_file(DEFAULT), "04-kubernetes-ingress", old), only=["helm-values"])
    assert [line.split(": ")[3] for line in problem_lines(report)] == ["load-balancer-ip"]


def test_an_unknown_ingress_override_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        render_text(_config("ingress:\n  terraform_overrides:\n    load-balancer-ips: 10.0.0.7\n"))
    assert (
        "ingress.terraform_overrides.load-balancer-ips: unknown key; did you mean 'load-balancer-ip'?"
        in str(caught.value)
    )


def test_resource_lists_are_kubernetes_names_not_chart_values() -> None:
    # minio's values.yaml shows `resources.requests.memory` only; `cpu` is still a request
    # the chart passes to the container. A misspelt parent is still the chart's to judge.
    from stagegraph.checks.helmvalues import unknown_keys

    defaults = {"resources": {"requests": {"memory": "16Gi"}}, "mode": "distributed"}
    values = {
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"nvidia.com/gpu": 1}},
        "resource": {"requests": {"cpu": "1"}},
    }
    assert list(unknown_keys(values, defaults, None)) == ["resource"]


def test_a_misspelt_resource_name_in_a_release_is_flagged() -> None:
    # The chart does not judge `resources.requests` keys and no chart is rendered here, so a
    # typo reached the API server (which refuses the pod) unless the check names it.
    def typo(data: dict[str, Any]) -> None:
        data["locals"]["conda_store_minio_values"]["resources"]["requests"]["memroy"] = "1Gi"

    report = check(edited(render_file(DEFAULT), "07-kubernetes-services", typo), only=["helm-values"])
    [line] = problem_lines(report)
    assert line.startswith(
        "07-kubernetes-services: helm-values: main.tf.json helm_release.conda_store_minio "
    )
    assert line.endswith(
        ": resources.requests.memroy: not a resource a container may request (cpu, memory, "
        "ephemeral-storage, hugepages-<size> or an extended resource such as nvidia.com/gpu); "
        "Kubernetes refuses the pod"
    )
    assert problem_lines(check(render_file(DEFAULT), only=["helm-values"])) == []


def test_resource_names_a_container_may_request() -> None:
    from stagegraph.checks.helmvalues import bad_resource_names

    values = {
        "worker": {"resources": {"limits": {"nvidia.com/gpu": 1, "hugepages-2Mi": "1Gi", "gpu": 1}}},
        "resources": {"requests": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi", "cpus": 2}},
        "labels": {"requests": {"anything": "x"}},
    }
    assert sorted(bad_resource_names(values)) == ["resources.requests.cpus", "worker.resources.limits.gpu"]


# --- the minio chart's default user: `console` / `console123`, consoleAdmin -------------------


@pytest.mark.parametrize("local", ["conda_store_minio_values", "loki_minio_values"])
def test_a_minio_release_that_keeps_the_charts_published_user_is_flagged(local: str) -> None:
    stages = render_file(DEFAULT)
    assert _values(stages, "07-kubernetes-services", local)["users"] == []

    def kept(data: dict[str, Any]) -> None:
        del data["locals"][local]["users"]

    report = check(edited(stages, "07-kubernetes-services", kept), only=["helm-values"])
    [line] = problem_lines(report)
    release = local.removesuffix("_values")
    assert f"helm_release.{release} (minio " in line
    assert line.endswith(
        ": users: the chart's default is a published credential (a user `console`, password "
        "`console123`, policy consoleAdmin); set users (to [] for none)"
    )


def test_grafana_admin_is_a_generated_secret_not_the_charts_published_password() -> None:
    local = ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml"
    doc_07 = doc(render_file(local), "07-kubernetes-services")
    admin = doc_07["locals"]["kube_prometheus_stack_values"]["grafana"]["admin"]
    secret = doc_07["resource"]["kubernetes_secret"][admin["existingSecret"].replace("-", "_")]
    assert secret["data"][admin["passwordKey"]] == "${random_password.grafana_admin.result}"
    stages = render_file(DEFAULT)

    def kept(data: dict[str, Any]) -> None:
        del data["locals"]["kube_prometheus_stack_values"]["grafana"]["admin"]

    report = check(edited(stages, "07-kubernetes-services", kept), only=["helm-values"])
    [line] = problem_lines(report)
    assert line.endswith(
        ": grafana.adminPassword: the chart's default is a published credential (Grafana's admin "
        "password `prom-operator`); set grafana.admin.existingSecret"
    )
