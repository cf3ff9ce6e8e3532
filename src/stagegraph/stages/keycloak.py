"""05-kubernetes-keycloak: Keycloak from the keycloakx Helm chart, served under /auth.

The root password reaches the cluster through one path only: the sensitive Terraform
variable `keycloak_root_password` (set by the engine from the environment) goes into a
Kubernetes secret, and Keycloak reads it from there as its bootstrap admin. It is never in
a rendered file, in the Helm values or in a stage output; the outputs name the secret.

The check after apply asks Keycloak's public endpoint for the master realm, so a deploy
that "succeeded" behind a broken ingress route fails here, not in the next stage.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import Field

from stagegraph.errors import RenderError, StagegraphError
from stagegraph.stage import CheckContext, RenderContext, Rendered, SensitiveInput, Stage, StageIO, Upstream
from stagegraph.stages.common import (
    ClusterNamespaceInputs,
    NodeSelector,
    cluster_module,
    deep_merge,
    helm_release,
)
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.stages.ingress import IngressOutputs
from stagegraph.stages.kubernetes_initialize import InitializeOutputs
from stagegraph.tfjson import depends, literal

NAME = "05-kubernetes-keycloak"
SECTIONS = ("security.keycloak",)

ROOT_USER = "root"
ADMIN_SECRET = "keycloak-admin-credentials"  # noqa: S105 - a secret's name, not a value
BASE_PATH = "/auth"
#: The chart names its HTTP service `<release>-keycloakx-http`.
RELEASE = "keycloak"
SERVICE = f"{RELEASE}-keycloakx-http"
DATA_CLAIM = "keycloak-data"
#: Where Keycloak's embedded (dev-file) database lives in the container.
DATA_PATH = "/opt/keycloak/data/h2"
THEMES_NOTE = "THEMES-NOT-RENDERED.md"
#: Seconds the check waits for an answer: Helm already waited for the pod to be ready.
CHECK_TIMEOUT = 10.0


class KeycloakInputs(ClusterNamespaceInputs):
    domain: str = Field(description="Domain Keycloak is served under (/auth).")
    base_url: str = Field(description="Origin the platform answers on, e.g. https://<domain>.")
    tls_verify: bool = Field(description="Whether clients can verify the certificate (false: self-signed).")
    general_node_selector: dict[str, str] = Field(
        description="Node selector of the general node group, as labels (empty: any node)."
    )


class KeycloakOutputs(StageIO):
    keycloak_url: str = Field(description="Public URL of Keycloak.")
    internal_url: str = Field(description="In-cluster URL of Keycloak.")
    admin_username: str = Field(description="Name of the root admin.")
    admin_credentials_secret: str = Field(
        description="Kubernetes secret holding the root admin password (a reference, not the value)."
    )
    base_url: str = Field("", description="Origin Keycloak and the platform answer on (https://<domain>).")
    base_path: str = Field(BASE_PATH, description="Path Keycloak is served under on base_url.")
    tls_verify: bool = Field(True, description="Whether clients can verify Keycloak's certificate.")


def connect(up: Upstream) -> KeycloakInputs:
    infra, init, ingress = up.get(InfrastructureOutputs), up.get(InitializeOutputs), up.get(IngressOutputs)
    # Without a certificate Traefik serves plain HTTP; a self-signed one cannot be verified.
    scheme = "http" if ingress.certificate_type == "disabled" else "https"
    return KeycloakInputs(
        kubeconfig_path=infra.kubeconfig_path,
        kube_context=infra.kube_context,
        namespace=init.namespace,
        domain=ingress.domain,
        base_url=f"{scheme}://{ingress.domain}",
        tls_verify=ingress.certificate_type != "self-signed",
        general_node_selector=_labels(infra.node_selectors.get("general")),
    )


def _labels(selector: NodeSelector | None) -> dict[str, str]:
    # Mock outputs (plan before 02 is applied) have no node groups: schedule anywhere.
    return {selector.key: selector.value} if selector is not None else {}


def _yaml_list(items: list[dict[str, Any]]) -> str:
    """YAML list items in block style, as the chart splices them.

    keycloakx writes `{{ tpl .Values.extraEnv . | nindent 12 }}` right after list items of
    its own (`env:`, `volumes:`), so the value must be more `- ...` items: a JSON array
    there (flow style) makes the StatefulSet invalid YAML.
    """
    return yaml.safe_dump(items, sort_keys=True, default_flow_style=False)


def keycloak_values(ctx: RenderContext) -> dict[str, Any]:
    """Helm values for the keycloakx chart, with `security.keycloak.overrides` merged last."""
    image = ctx.pins.image("keycloak")
    secret_ref = {"secretKeyRef": {"name": ADMIN_SECRET, "key": "username"}}
    password_ref = {"secretKeyRef": {"name": ADMIN_SECRET, "key": "password"}}
    env: list[dict[str, Any]] = [
        {"name": "KC_BOOTSTRAP_ADMIN_USERNAME", "valueFrom": secret_ref},
        {"name": "KC_BOOTSTRAP_ADMIN_PASSWORD", "valueFrom": password_ref},
        # Traefik terminates TLS and forwards X-Forwarded-* headers.
        {"name": "KC_PROXY_HEADERS", "value": "xforwarded"},
        {"name": "KC_HTTP_ENABLED", "value": "true"},
        # Tokens name the public URL as issuer even when a service fetches them through the
        # in-cluster URL (backchannel), so both paths validate against one issuer.
        {"name": "KC_HOSTNAME", "value": f"${{var.base_url}}{BASE_PATH}"},
        {"name": "KC_HOSTNAME_BACKCHANNEL_DYNAMIC", "value": "true"},
    ]
    values: dict[str, Any] = {
        "image": {"repository": image.image, "tag": image.tag},
        "command": ["/opt/keycloak/bin/kc.sh", "start", "--http-port=8080"],
        "extraEnv": _yaml_list(env),
        "http": {"relativePath": BASE_PATH},
        # The chart's proxy switch sets options Keycloak 26 removed; the env above replaces it.
        "proxy": {"enabled": False},
        # Embedded database on a volume, so realms survive a restart. Point `database` at
        # PostgreSQL through security.keycloak.overrides for a production setup.
        "database": {"vendor": "dev-file"},
        "extraVolumes": _yaml_list([{"name": "data", "persistentVolumeClaim": {"claimName": DATA_CLAIM}}]),
        "extraVolumeMounts": _yaml_list([{"name": "data", "mountPath": DATA_PATH}]),
        "nodeSelector": "${var.general_node_selector}",
        "ingress": {
            "enabled": True,
            "ingressClassName": "traefik",
            "annotations": {
                "traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
                "traefik.ingress.kubernetes.io/router.tls": "true",
            },
            "rules": [{"host": "${var.domain}", "paths": [{"path": f"{BASE_PATH}/", "pathType": "Prefix"}]}],
            "tls": [],
        },
    }
    return deep_merge(values, literal(dict(ctx.config.security.keycloak.overrides)))


def _password_required(ctx: RenderContext) -> dict[str, Any]:
    """A hand deploy without the password fails at plan, not with a pod that cannot start.

    Left out in the sandbox, whose configs need no root password (nothing logs in there).
    """
    if ctx.sandbox:
        return {}
    condition = {
        "condition": "${var.keycloak_root_password != null}",
        "error_message": "keycloak_root_password is not set: export TF_VAR_keycloak_root_password "
        "(doit deploy does this from security.keycloak.initial_root_password).",
    }
    return {"lifecycle": [{"precondition": [condition]}]}


def render(ctx: RenderContext) -> Rendered:
    keycloak = ctx.config.security.keycloak
    if not ctx.sandbox and keycloak.initial_root_password is None:
        raise RenderError(
            f"stage {NAME}: security.keycloak.initial_root_password is not set; Keycloak needs a root "
            "password (`doit init` writes a random one, or set a SOPS reference)"
        )
    m = cluster_module(ctx, NAME, ("kubernetes", "helm"))
    secret = m.resource(
        "kubernetes_secret",
        "admin",
        {
            "metadata": [{"name": ADMIN_SECRET, "namespace": "${var.namespace}"}],
            # Only a reference to the sensitive variable: the value never enters this file.
            "data": {"username": ROOT_USER, "password": "${var.keycloak_root_password}"},
            "type": "Opaque",
            **_password_required(ctx),
        },
    )
    claim = m.resource(
        "kubernetes_persistent_volume_claim",
        "data",
        {
            "metadata": [{"name": DATA_CLAIM, "namespace": "${var.namespace}"}],
            "spec": [{"access_modes": ["ReadWriteOnce"], "resources": [{"requests": {"storage": "1Gi"}}]}],
            # Storage classes that bind on first use (kind's) would otherwise block forever.
            "wait_until_bound": False,
        },
    )
    helm_release(
        m,
        ctx,
        RELEASE,
        "keycloakx",
        "${var.namespace}",
        keycloak_values(ctx),
        wait=True,
        timeout=900,
        depends_on=depends(secret, claim),
    )
    m.output("keycloak_url", f"${{var.base_url}}{BASE_PATH}", "Public URL of Keycloak.")
    m.output("base_url", "${var.base_url}", "Origin Keycloak and the platform answer on.")
    m.output("base_path", BASE_PATH, "Path Keycloak is served under.")
    m.output("tls_verify", "${var.tls_verify}", "Whether clients can verify Keycloak's certificate.")
    m.output(
        "internal_url",
        f"http://{SERVICE}.${{var.namespace}}.svc:80{BASE_PATH}",
        "In-cluster URL of Keycloak.",
    )
    m.output("admin_username", ROOT_USER, "Name of Keycloak's root admin.")
    m.output(
        "admin_credentials_secret",
        secret.attr("metadata[0].name"),
        "Kubernetes secret holding the root admin's password (its name, not the value).",
    )
    files: dict[str, Any] = {"main.tf.json": m.document()}
    if keycloak.themes.enabled:
        files[THEMES_NOTE] = (
            f"# {NAME}: custom themes are not rendered yet\n\n"
            "security.keycloak.themes is enabled, but installing themes from a git repository needs "
            "a git-sync image pinned in lockfiles/versions.yaml (images.git_sync), which is not there "
            "yet. Keycloak is deployed with its built-in themes.\n"
        )
    return files


# --- the check after apply -------------------------------------------------------------------


class KeycloakCheckError(StagegraphError):
    """Keycloak did not answer its public realm endpoint as expected."""


def probe(url: str, *, verify_tls: bool, timeout: float = CHECK_TIMEOUT) -> None:
    """GET `url` and expect 200; raise KeycloakCheckError (one line) otherwise."""
    # Imported here: stage modules load for every doit command, `doit list` included.
    import ssl
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise KeycloakCheckError(f"Keycloak URL {url!r} is not http(s); check the outputs of {NAME}")
    context = ssl.create_default_context()
    if not verify_tls:
        # Self-signed certificate: nothing to verify against, but the route is still checked.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        text = " ".join(str(reason).split()) or type(err).__name__
        raise KeycloakCheckError(
            f"Keycloak did not answer at {url} ({text}); check that the domain points at the ingress "
            "and the keycloak pod is ready"
        ) from None
    if status != 200:
        raise KeycloakCheckError(
            f"Keycloak answered HTTP {status} at {url}, expected 200; check the keycloak pod and the "
            f"ingress route for {BASE_PATH}"
        )


def check(ctx: CheckContext) -> None:
    """After apply: Keycloak's master realm answers on its public URL."""
    outputs = ctx.outputs
    if not isinstance(outputs, KeycloakOutputs):
        raise KeycloakCheckError(
            f"stage {ctx.stage}: outputs are {type(outputs).__name__}, not KeycloakOutputs"
        )
    url = f"{outputs.keycloak_url.rstrip('/')}/realms/master"
    probe(url, verify_tls=outputs.tls_verify)
    ctx.line(f"Keycloak answers at {url}")


STAGE = Stage(
    name=NAME,
    description="Keycloak identity provider (Helm), root password passed as a sensitive value",
    render=render,
    depends_on=("02-infrastructure", "03-kubernetes-initialize", "04-kubernetes-ingress"),
    config_sections=SECTIONS,
    pins=("terraform", "providers.kubernetes", "providers.helm", "helm_charts.keycloakx", "images.keycloak"),
    inputs=KeycloakInputs,
    connect=connect,
    outputs=KeycloakOutputs,
    mock_outputs=KeycloakOutputs(
        keycloak_url="https://mock.example.com/auth",
        internal_url=f"http://{SERVICE}.dev.svc:80/auth",
        admin_username=ROOT_USER,
        admin_credentials_secret=ADMIN_SECRET,
        base_url="https://mock.example.com",
        base_path=BASE_PATH,
        tls_verify=True,
    ),
    sensitive=(
        SensitiveInput(
            "keycloak_root_password",
            "security.keycloak.initial_root_password",
            "Initial password of Keycloak's root user.",
        ),
    ),
    check=check,
    priority=50,
)
