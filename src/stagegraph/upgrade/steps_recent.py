"""Config migrations of Nebari 2024.4.1 to 2025.10.1 (see `stagegraph.upgrade.steps`)."""

from __future__ import annotations

from stagegraph.upgrade.model import Decision, StepContext, UpgradeError, get_path, section
from stagegraph.upgrade.registry import CLOUDS, PROVIDER_KEYS, step
from stagegraph.upgrade.registry import provider_of as _provider

# --- 2024 ----------------------------------------------------------------------------------

DEFAULT_NODE_GROUPS = Decision(
    "default-node-groups",
    ("yes", "no"),
    "write the provider's default node_groups into the config",
    default="no",
)


def _default_node_groups(provider: str) -> dict[str, dict[str, object]]:
    from stagegraph.schema.config import NebariConfig

    key = PROVIDER_KEYS[provider]
    model = NebariConfig.model_fields[key].annotation
    inner = [a for a in getattr(model, "__args__", ()) if a is not type(None)]
    factory = inner[0].model_fields["node_groups"].default_factory
    groups: dict[str, dict[str, object]] = factory()
    return groups


@step("2024.4.1", "offers the default node groups")
def _2024_4_1(ctx: StepContext) -> None:
    provider = _provider(ctx)
    block = ctx.config.get(PROVIDER_KEYS.get(provider, ""))
    missing = provider in CLOUDS and isinstance(block, dict) and "node_groups" not in block
    if missing and ctx.decide(DEFAULT_NODE_GROUPS) == "yes":
        assert isinstance(block, dict)
        block["node_groups"] = _default_node_groups(provider)


PROMETHEUS_CRDS = (
    "alertmanagerconfigs",
    "alertmanagers",
    "podmonitors",
    "probes",
    "prometheusagents",
    "prometheuses",
    "prometheusrules",
    "scrapeconfigs",
    "servicemonitors",
    "thanosrulers",
)
GCP_OLD_NODES = Decision(
    "gcp-node-groups",
    ("e2", "n1"),
    "GCP default node groups moved to cheaper e2 machines (about 15 minutes of downtime); "
    "n1 keeps the old ones",
    default="e2",
)


@step("2024.6.1", "kube-prometheus-stack 58 (deploy actions); GCP e2 node groups")
def _2024_6_1(ctx: StepContext) -> None:
    namespace = str(ctx.config.get("namespace", "dev"))
    monitoring = ctx.config.get("monitoring")
    if not isinstance(monitoring, dict) or monitoring.get("enabled", True):
        base = "https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.73.0/example/prometheus-operator-crd"
        ctx.action(
            slug="prometheus-crds",
            stage="07-kubernetes-services",
            when="before",
            kind="manual",
            description="update the kube-prometheus-stack CRDs to prometheus-operator v0.73.0 "
            "(export custom Grafana dashboards first: they are deleted)",
            commands=[
                f"kubectl apply --server-side --force-conflicts -f {base}/monitoring.coreos.com_{crd}.yaml"
                for crd in PROMETHEUS_CRDS
            ],
        )
        ctx.action(
            slug="node-exporter",
            stage="07-kubernetes-services",
            when="before",
            kind="kubernetes-delete",
            description="delete the prometheus-node-exporter daemonset (its selector changed)",
            objects=[
                {
                    "api_version": "apps/v1",
                    "plural": "daemonsets",
                    "namespace": namespace,
                    "label_selector": "app=prometheus-node-exporter",
                }
            ],
        )
    if _provider(ctx) == "gcp":
        block = section(ctx.config, "google_cloud_platform")
        if not block.get("node_groups") and ctx.decide(GCP_OLD_NODES) == "n1":
            block["node_groups"] = {
                "general": {"instance": "n1-standard-8", "min_nodes": 1, "max_nodes": 1},
                "user": {"instance": "n1-standard-4", "min_nodes": 0, "max_nodes": 5},
                "worker": {"instance": "n1-standard-4", "min_nodes": 0, "max_nodes": 5},
            }


@step("2024.7.1", "DigitalOcean deprecated")
def _2024_7_1(ctx: StepContext) -> None:
    if _provider(ctx) == "do":
        ctx.note("DigitalOcean support is deprecated and goes in 2024.12.1")


SHARED_DIRECTORY_ROLES = Decision(
    "shared-directory-roles",
    ("yes", "no"),
    "group directories are mounted only for groups with the allow-group-directory-creation "
    "role; yes gives every existing group that role after Keycloak is configured",
    default="no",
)


@step("2024.11.1", "group directories need a role (optional deploy action)")
def _2024_11_1(ctx: StepContext) -> None:
    ctx.note(
        "ask users to log out before the deploy: group directories under ~/shared are now "
        "mounted only for groups with the write:shared-mount scope"
    )
    if _provider(ctx) == "azure":
        ctx.note("Azure node groups are recreated (about 15 minutes of downtime)")
    if ctx.decide(SHARED_DIRECTORY_ROLES) == "yes":
        ctx.action(
            slug="shared-directory-roles",
            stage="06-kubernetes-keycloak-configuration",
            when="after",
            kind="manual",
            description="give every existing Keycloak group a jupyterhub client role with scope "
            "write:shared-mount, component shared-directory",
            commands=[
                "In Keycloak (/auth/admin, realm nebari): Clients > jupyterhub > Roles > Create "
                "'legacy-group-directory-creation-role' with attributes scopes=write:shared-mount, "
                "component=shared-directory; then Groups > each group > Role mapping > assign it",
            ],
        )


@step("2024.12.1", "DigitalOcean removed")
def _2024_12_1(ctx: StepContext) -> None:
    if _provider(ctx) == "do":
        raise UpgradeError(
            f"{ctx.config_path.name}: provider: do is no longer supported; change it to existing "
            "(your DigitalOcean cluster through its kubeconfig) and run `doit upgrade` again"
        )


# --- 2025 ----------------------------------------------------------------------------------


@step("2025.2.1", "Kubernetes 1.31; azurerm 4 state migration (deploy action)")
def _2025_2_1(ctx: StepContext) -> None:
    ctx.note(
        "the newest Kubernetes supported is now 1.31; upgrade the cluster one minor at a time "
        "after this deploy"
    )
    if _provider(ctx) == "azure":
        ctx.action(
            slug="azurerm4-state",
            stage="01-terraform-state",
            when="before",
            kind="tfstate-rename",
            description="rename enable_https_traffic_only to https_traffic_only_enabled in the "
            "state (azurerm 3 to 4)",
            renames={"enable_https_traffic_only": "https_traffic_only_enabled"},
        )


TAINTS = Decision(
    "node-taints",
    ("apply", "opt-out"),
    "non-general node groups now get the taint dedicated=nebari:NoSchedule; opt-out writes "
    "taints: [] on every node group",
    default="apply",
)


@step("2025.4.1", "node taints on non-general node groups")
def _2025_4_1(ctx: StepContext) -> None:
    provider = _provider(ctx)
    key = PROVIDER_KEYS.get(provider, "")
    if provider not in CLOUDS or key not in ctx.config:
        return
    if ctx.decide(TAINTS) == "opt-out":
        block = section(ctx.config, key)
        groups = block.get("node_groups") or _default_node_groups(provider)
        for group in groups.values():
            group["taints"] = []
        block["node_groups"] = groups


BITNAMI = (
    ("keycloak", "05-kubernetes-keycloak", "keycloak-15.0.2", "postgresql.image", "postgresql", "11.14.0"),
    (
        "nebari-conda-store-postgresql",
        "07-kubernetes-services",
        "postgresql-10.13.12",
        "image",
        "postgresql",
        "11.14.0",
    ),
    ("nebari-conda-store-minio", "07-kubernetes-services", "minio-6.7.4", "image", "minio", "2021.4.22"),
    (
        "nebari-conda-store-redis",
        "07-kubernetes-services",
        "redis-17.0.6",
        "image",
        "redis",
        "7.0.4-debian-11-r4",
    ),
)


@step("2025.10.1", "deprecated Bitnami images patched before charts upgrade (deploy actions)")
def _2025_10_1(ctx: StepContext) -> None:
    namespace = str(ctx.config.get("namespace", "dev"))
    wanted: list[tuple[str, str, str, str, str, str]] = []
    if get_path(ctx.config, "security.keycloak.enabled", True):
        wanted.append(BITNAMI[0])
    if get_path(ctx.config, "conda_store.enabled", True):
        wanted.extend(BITNAMI[1:])
    if get_path(ctx.config, "monitoring.enabled", True):
        name = get_path(ctx.config, "monitoring.overrides.minio-release-name", "nebari-loki-minio")
        wanted.append((str(name), "07-kubernetes-services", "minio-6.7.4", "image", "minio", "2021.4.22"))
    for release, stage, chart, prefix, repo, tag in wanted:
        url = (
            f"https://github.com/codecentric/helm-charts/releases/download/{chart}/{chart}.tgz"
            if chart.startswith("keycloak")
            else f"https://charts.bitnami.com/bitnami/{chart}.tgz"
        )
        ctx.action(
            slug=f"bitnami-{release}",
            stage=stage,
            when="before",
            kind="manual",
            description=f"point Helm release {release} at the bitnamilegacy image (Bitnami "
            "removed the old ones; nebari-dev/nebari#3137)",
            commands=[
                f"helm upgrade {release} {url} --reuse-values --namespace {namespace} "
                f"--set {prefix}.registry=docker.io --set {prefix}.repository=bitnamilegacy/{repo} "
                f"--set {prefix}.tag={tag}"
            ],
        )
