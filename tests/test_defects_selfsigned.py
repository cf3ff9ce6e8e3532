"""Issue 11, defect 10: with a self-signed certificate, in-cluster callers do not go through
the public URL's TLS (which they could not verify).

The Kuberhealthy checks probe in-cluster addresses (tests/test_kuberhealthy_stages.py);
the Argo admission webhooks call Traefik's in-cluster Service and verify the certificate
04 makes for that name. With a public certificate both keep the public URL.
"""

from __future__ import annotations

from typing import Any

from checkhelpers import ROOT, doc, render_text

DEFAULT = (ROOT / "nebari-config.yaml").read_text()
LETS_ENCRYPT = DEFAULT + "certificate:\n  type: lets-encrypt\n  acme_email: ops@example.com\n"


def _twins(stages: Any, stage: str) -> dict[str, Any]:
    twins: dict[str, Any] = doc(stages, stage)["resource"]["terraform_data"]
    return twins


def _webhook(stages: Any) -> dict[str, Any]:
    local = doc(stages, "07-kubernetes-services")["locals"]["workflow_controller_validate_webhook_manifest"]
    hook: dict[str, Any] = local["webhooks"][0]
    return hook


def test_self_signed_ingress_certificate_covers_traefik_in_cluster_name() -> None:
    assert "\ncertificate:" not in DEFAULT  # Nebari's default certificate: self-signed
    stages = render_text(DEFAULT)
    main = doc(stages, "04-kubernetes-ingress")
    cert = _twins(stages, "04-kubernetes-ingress")["tls_self_signed_cert__ingress"]["input"]
    assert cert["dns_names"] == [
        "demo.example.com",
        "traefik.${var.namespace}.svc",
        "traefik.${var.namespace}.svc.cluster.local",
    ]
    values = main["locals"]["traefik_values"]
    assert values["tlsStore"] == {
        "default": {"defaultCertificate": {"secretName": "ingress-self-signed-certificate"}}
    }
    assert main["output"]["certificate_ca"]["value"].startswith("${base64encode(")


def test_with_a_self_signed_certificate_webhooks_call_traefik_in_cluster() -> None:
    stages = render_text(DEFAULT)
    hook = _webhook(stages)
    assert hook["clientConfig"] == {
        "service": {
            "name": "traefik",
            "namespace": "${var.namespace}",
            "port": 443,
            "path": "/argo/validate",
        },
        "caBundle": "${var.certificate_ca}",
    }
    routes = doc(stages, "07-kubernetes-services")["locals"]["route_argo_workflows_manifest"]["spec"][
        "routes"
    ]
    assert routes[0]["match"] == (
        "(Host(`${var.domain}`) || Host(`traefik.${var.namespace}.svc`)) && (Path(`/argo/validate`))"
    )


def test_with_a_public_certificate_webhooks_keep_the_public_url() -> None:
    stages = render_text(LETS_ENCRYPT)
    assert _webhook(stages)["clientConfig"] == {"url": "https://${var.domain}/argo/validate"}
    assert not any(k.startswith("tls_") for k in _twins(stages, "04-kubernetes-ingress"))
    assert doc(stages, "04-kubernetes-ingress")["output"]["certificate_ca"]["value"] is None


def test_self_signed_callers_check_passes_the_render_and_names_a_public_webhook_url() -> None:
    from checkhelpers import check, edited, problem_lines

    stages = render_text(DEFAULT)
    assert problem_lines(check(stages, only=["self-signed-callers"])) == []

    def old(data: dict[str, Any]) -> None:
        hook = data["locals"]["workflow_controller_validate_webhook_manifest"]["webhooks"][0]
        hook["clientConfig"] = {"url": "https://${var.domain}/argo/validate"}

    lines = problem_lines(check(edited(stages, "07-kubernetes-services", old), only=["self-signed-callers"]))
    assert lines == [
        "07-kubernetes-services: self-signed-callers: main.tf.json kubectl_manifest.workflow_controller_validate_webhook: "
        "ValidatingWebhookConfiguration/wf-admission-controller-stagegraph-unknown: webhooks[0].clientConfig.url: "
        "https://stagegraph-unknown/argo/validate goes through the public URL, whose certificate is self-signed and fails "
        "verification; call the in-cluster address"
    ]
    # A public certificate: nothing to say.
    assert problem_lines(check(render_text(LETS_ENCRYPT), only=["self-signed-callers"])) == []
