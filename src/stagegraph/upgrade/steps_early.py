"""Config migrations of QHub 0.3.12 to Nebari 2024.1.1 (see `stagegraph.upgrade.steps`)."""

from __future__ import annotations

from stagegraph.upgrade.model import Decision, StepContext, get_path, pop_key, section
from stagegraph.upgrade.registry import provider_of as _provider
from stagegraph.upgrade.registry import step

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
