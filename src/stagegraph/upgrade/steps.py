"""The config migrations, one small step per Nebari release that changed something.

Written from what each step of Nebari 2025.10.1's `upgrade.py` changes (26 steps, from
0.3.12 to 2025.10.1). Every step also sets `nebari_version` to its release (done by
`run.upgrade_config`, not here). Differences from Nebari, on purpose:
- no prompts: decisions come from `--decide NAME:VALUE` (see `DECISIONS`);
- no live-cluster calls: those become `DeployAction`s the deploy runs and records;
- no generated plaintext password (0.4.0): the note says how to add an encrypted one;
- no `rm -rf stages`: stagegraph's render deletes files a stage no longer renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stagegraph.upgrade.model import Decision, StepContext, UpgradeError, get_path, pop_key, section
from stagegraph.upgrade.versions import parse

#: Nebari's provider name -> the config key of its section.
PROVIDER_KEYS = {
    "local": "local",
    "existing": "existing",
    "do": "digital_ocean",
    "aws": "amazon_web_services",
    "gcp": "google_cloud_platform",
    "azure": "azure",
}
CLOUDS = ("aws", "gcp", "azure")


@dataclass(frozen=True)
class Step:
    version: str
    summary: str
    run: Callable[[StepContext], None]


STEPS: dict[str, Step] = {}


def step(
    version: str, summary: str
) -> Callable[[Callable[[StepContext], None]], Callable[[StepContext], None]]:
    """Register `fn` as the migration to `version` (one per version, a full release)."""

    def register(fn: Callable[[StepContext], None]) -> Callable[[StepContext], None]:
        if version in STEPS:
            raise ValueError(f"two upgrade steps for {version}")
        if str(parse(version)) != version:
            raise ValueError(f"upgrade step {version}: use a full release version")
        STEPS[version] = Step(version, summary, fn)
        return fn

    return register


def _nothing(ctx: StepContext) -> None:
    """Releases whose config format did not change: only nebari_version moves."""


for _v in ("2024.3.1", "2024.3.2", "2024.3.3", "2024.5.1", "2024.9.1", "2025.3.1", "2025.4.2", "2025.6.1"):
    step(_v, "no config change")(_nothing)


def steps_between(start: str, finish: str) -> Iterator[Step]:
    """The steps after `start` up to and including `finish`, in version order."""
    low, high = parse(start), parse(finish)
    for version in sorted(STEPS, key=parse):
        if low < parse(version) <= high:
            yield STEPS[version]


def _provider(ctx: StepContext) -> str:
    provider = ctx.config.get("provider")
    if isinstance(provider, str):
        return provider
    present = [p for p, key in PROVIDER_KEYS.items() if key in ctx.config]
    return present[0] if len(present) == 1 else "local"


# --- 0.3.x - 0.4.x ---------------------------------------------------------------------------


@step("0.3.12", "adds default_images.conda_store")
def _0_3_12(ctx: StepContext) -> None:
    images = section(ctx.config, "default_images")
    if images.get("conda_store") is None:
        images["conda_store"] = "quansight/conda-store-server:v0.3.3"


CUSTOM_AUTH = Decision(
    "custom-auth",
    ("password",),
    "security.authentication.type custom is not supported since 0.4.0 (Keycloak does all logins)",
)


@step("0.4.0", "Keycloak: users and groups move to a realm import file; retired keys go")
def _0_4_0(ctx: StepContext) -> None:
    import json

    security = section(ctx.config, "security")
    auth = section(security, "authentication")
    if auth.get("type") == "custom":
        ctx.decide(CUSTOM_AUTH)
        security["authentication"] = {"type": "password"}
    users = security.get("users") or {}
    groups = security.get("groups") or {}
    realm = {
        "id": "nebari",
        "realm": "nebari",
        "users": [
            {
                "username": name,
                "enabled": True,
                "groups": sorted(
                    ({(u or {}).get("primary_group", "")} | set((u or {}).get("secondary_groups", []))) - {""}
                ),
            }
            for name, u in users.items()
        ],
        "groups": [{"name": g, "path": f"/{g}"} for g in groups if g not in {"users", "admin"}],
    }
    if users or groups:
        target = ctx.config_path.parent / "nebari-users-import.json"
        ctx.files[target] = json.dumps(realm, indent=2) + "\n"
        ctx.note(
            f"wrote {target.name}: import it in Keycloak (/auth/, Manage > Import) after the next "
            "deploy; non-admin users land in the analyst group"
        )
    pop_key(security, "users")
    if "groups" in security:
        if "users" in groups:
            security["shared_users_group"] = True
        del security["groups"]
    pop_key(ctx.config, "terraform_modules")
    images = section(ctx.config, "default_images")
    pop_key(images, "conda_store")
    pop_key(images, "dask_gateway")
    if get_path(security, "keycloak.initial_root_password") is None:
        # Nebari writes a random password into the config in plain text; stagegraph writes
        # it encrypted under secrets/ (as `doit init` does) and refers to it.
        if ctx.make_root_password is not None:
            section(security, "keycloak")["initial_root_password"] = ctx.make_root_password()
            ctx.note("generated the Keycloak root password, encrypted under secrets/ (change it at /auth/)")
        else:
            ctx.note("Keycloak needs a root password: set security.keycloak.initial_root_password")
    azure = ctx.config.get("azure")
    if isinstance(azure, dict):
        pop_key(azure, "project")
    config = auth.get("config")
    if isinstance(config, dict):
        pop_key(config, "oauth_callback_url")
        pop_key(config, "scope")
    ctx.config["prevent_deploy"] = True
    ctx.note("0.4.0 builds a new cluster: back up your data, then remove prevent_deploy to deploy")


@step("0.4.1", "JupyterLab profiles get an access type")
def _0_4_1(ctx: StepContext) -> None:
    for profile in get_path(ctx.config, "profiles.jupyterlab", []) or []:
        if isinstance(profile, dict):
            profile["access"] = "yaml" if ("groups" in profile or "users" in profile) else "all"


# --- 2023 ----------------------------------------------------------------------------------

ARGO_CRDS = (
    "clusterworkflowtemplates",
    "cronworkflows",
    "workfloweventbindings",
    "workflows",
    "workflowtasksets",
    "workflowtemplates",
)


@step("2023.4.2", "Argo Workflows CRDs and service accounts are replaced (deploy action)")
def _2023_4_2(ctx: StepContext) -> None:
    namespace = str(ctx.config.get("namespace", "dev"))
    objects = [
        {
            "api_version": "apiextensions.k8s.io/v1",
            "plural": "customresourcedefinitions",
            "name": f"{crd}.argoproj.io",
        }
        for crd in ARGO_CRDS
    ] + [
        {"api_version": "v1", "plural": "serviceaccounts", "namespace": namespace, "name": sa}
        for sa in ("argo-admin", "argo-dev", "argo-view")
    ]
    ctx.action(
        slug="argo-crds",
        stage="07-kubernetes-services",
        when="before",
        kind="kubernetes-delete",
        description="delete the old Argo Workflows CRDs and service accounts (workflows made "
        "before are erased with them)",
        objects=objects,
    )


@step("2023.7.1", "AWS clusters are rebuilt: prevent_deploy")
def _2023_7_1(ctx: StepContext) -> None:
    if _provider(ctx) == "aws":
        ctx.config["prevent_deploy"] = True
        ctx.note("the AWS cluster is torn down and rebuilt: back up, then remove prevent_deploy")


WORKFLOW_CONTROLLER = Decision(
    "workflow-controller",
    ("yes", "no"),
    "enable the Nebari Workflow Controller (needed by Argo-Jupyter-Scheduler)",
    default="yes",
)


@step("2023.7.2", "offers the Nebari Workflow Controller")
def _2023_7_2(ctx: StepContext) -> None:
    argo = ctx.config.get("argo_workflows")
    if isinstance(argo, dict) and argo.get("enabled") and ctx.decide(WORKFLOW_CONTROLLER) == "yes":
        argo["nebari_workflow_controller"] = {"enabled": True}


@step("2023.10.1", "extension mechanism: prevent_deploy, CDS Dashboards removed")
def _2023_10_1(ctx: StepContext) -> None:
    ctx.config["prevent_deploy"] = True
    ctx.note(
        "a major refactor: back up your data (https://www.nebari.dev/docs/how-tos/manual-backup), "
        "then remove prevent_deploy; JupyterHub 3 needs Kubernetes 1.26 or newer"
    )
    if pop_key(ctx.config, "cdsdashboards"):
        ctx.note("removed cdsdashboards (CDS Dashboards need JupyterHub 1)")


@step("2023.11.1", "ClearML, Prefect and kbatch are removed")
def _2023_11_1(ctx: StepContext) -> None:
    for key in ("clearml", "prefect", "kbatch"):
        if pop_key(ctx.config, key):
            ctx.note(f"removed {key} (no longer part of Nebari; an extension can bring it back)")


@step("2023.12.1", "last release with jupyterlab-videochat")
def _2023_12_1(ctx: StepContext) -> None:
    ctx.note("the last release with the jupyterlab-videochat extension")


@step("2024.1.1", "JupyterLab extensions retired")
def _2024_1_1(ctx: StepContext) -> None:
    ctx.note(
        "jupyterlab-videochat, retrolab, jupyter-tensorboard, jupyterlab-conda-store and "
        "jupyter-nvdashboard are uninstalled"
    )


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


#: Every decision a step can ask for, for `doit upgrade --help` and the README.
DECISIONS: tuple[Decision, ...] = (
    CUSTOM_AUTH,
    WORKFLOW_CONTROLLER,
    DEFAULT_NODE_GROUPS,
    GCP_OLD_NODES,
    SHARED_DIRECTORY_ROLES,
    TAINTS,
)
