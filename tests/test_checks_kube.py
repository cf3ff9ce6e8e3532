"""The kubernetes-objects check: strict API schemas, CRD schemas with unknown fields an error."""

from __future__ import annotations

from typing import Any

from checkhelpers import ROOT, check, edited, problem_lines, render_file

from stagegraph.checks.crdschema import strict_schema

DEFAULT = ROOT / "nebari-config.yaml"


def _local(name: str, change: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        change(data["locals"][name])

    return edit


def test_an_unknown_field_of_a_built_in_kind_is_an_error() -> None:
    def typo(manifest: dict[str, Any]) -> None:
        manifest["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"

    stages = edited(
        render_file(DEFAULT), "07-kubernetes-services", _local("conda_store_server_manifest", typo)
    )
    lines = problem_lines(check(stages, only=["kubernetes-objects"]))
    assert len(lines) == 1
    assert lines[0].startswith(
        "07-kubernetes-services: kubernetes-objects: main.tf.json kubectl_manifest.conda_store_server: "
        "Deployment/conda-store-server: spec.template.spec.containers.0: Additional properties are not allowed "
        "('imagePullPolicyy' was unexpected)"
    )
    assert lines[0].endswith("[Kubernetes 1.31.0]")


def test_an_unknown_field_of_a_custom_resource_is_an_error_against_the_chart_crd() -> None:
    def typo(route: dict[str, Any]) -> None:
        route["spec"]["routes"][0]["priorityy"] = 10

    stages = edited(
        render_file(DEFAULT), "07-kubernetes-services", _local("route_conda_store_manifest", typo)
    )
    lines = problem_lines(check(stages, only=["kubernetes-objects"]))
    assert len(lines) == 1
    assert "IngressRoute/conda-store: spec.routes.0: Additional properties are not allowed" in lines[0]
    assert "[chart traefik" in lines[0]


def test_a_name_the_api_server_would_refuse_is_an_error() -> None:
    def bad(manifest: dict[str, Any]) -> None:
        manifest["metadata"]["name"] = "Conda_Store"

    stages = edited(
        render_file(DEFAULT), "07-kubernetes-services", _local("conda_store_server_manifest", bad)
    )
    lines = problem_lines(check(stages, only=["kubernetes-objects"]))
    assert lines == [
        "07-kubernetes-services: kubernetes-objects: main.tf.json kubectl_manifest.conda_store_server: "
        "Deployment/Conda_Store: metadata.name: 'Conda_Store' is not a DNS-1123 subdomain (lowercase letters, "
        "digits and '-', dots between parts; at most 253 characters)"
    ]


def test_crd_schemas_close_objects_unless_they_preserve_unknown_fields() -> None:
    crd = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}},
            "status": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"b": {}},
            },
            "data": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    strict = strict_schema(crd, root=True)
    assert strict["additionalProperties"] is False
    assert set(strict["properties"]) == {"spec", "status", "data", "apiVersion", "kind", "metadata"}
    assert strict["properties"]["spec"]["additionalProperties"] is False
    assert strict["properties"]["spec"]["properties"]["a"]["type"] == ["string", "null"]
    assert "additionalProperties" not in strict["properties"]["status"]
    assert strict["properties"]["data"]["additionalProperties"] == {"type": "string"}
