"""Check: with a self-signed certificate, no in-cluster caller goes through the public URL.

Traefik then serves a certificate that no client trusts by default: an admission webhook
called at `https://<domain>/...` fails every request (and with failurePolicy Fail refuses
every workflow), and a health check probing `https://<domain>/...` fails TLS
verification. The check knows the certificate is self-signed when the render makes one
(`tls_self_signed_cert`), and names each webhook URL and each Kuberhealthy probe that still
points at the public origin.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stagegraph.checks import CheckRun, Finding, register
from stagegraph.checks.kubeobjects import KubeObject, objects_of
from stagegraph.checks.tfresources import resources
from stagegraph.tfexpr import SHAPE_WORD

NAME = "self-signed-callers"


def _public_origins(run: CheckRun) -> set[str]:
    """`https://<domain>` forms of the self-signed certificate's names (empty: not self-signed)."""
    origins: set[str] = set()
    for stage in run.stages:
        for doc in stage.terraform_documents().values():
            for res in resources(doc):
                if res.type == "tls_self_signed_cert":
                    names = [n for n in res.body.get("dns_names") or [] if ".svc" not in str(n)]
                    # The domain as a literal (manifests) and as Terraform writes it, in shape.
                    origins |= {f"https://{n}" for n in names} | {f"https://{SHAPE_WORD}"}
    return origins


def _probes(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if body.get("kind") in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for i, hook in enumerate(body.get("webhooks") or []):
            url = (hook.get("clientConfig") or {}).get("url")
            if isinstance(url, str):
                yield f"webhooks[{i}].clientConfig.url", url
    if body.get("kind") == "KuberhealthyCheck":
        containers = (((body.get("spec") or {}).get("podSpec") or {}).get("containers")) or []
        for c in containers:
            for env in c.get("env") or []:
                if env.get("name") == "CHECK_URL" and isinstance(env.get("value"), str):
                    yield f"containers[{c.get('name')}].env.CHECK_URL", env["value"]


@register(NAME, "with a self-signed certificate, webhooks and health checks use in-cluster addresses")
def check_self_signed_callers(run: CheckRun) -> Iterator[Finding]:
    origins = _public_origins(run)
    if not origins:
        return
    for stage in run.stages:
        for obj in objects_of(stage, shape=True):
            if not isinstance(obj, KubeObject):
                continue
            for where, url in _probes(obj.body):
                if any(url == o or url.startswith(o + "/") for o in origins):
                    yield Finding.problem(
                        stage.name,
                        NAME,
                        f"{obj.where}: {obj.title}: {where}: {url} goes through the public URL, whose "
                        "certificate is self-signed and fails verification; call the in-cluster address",
                    )
