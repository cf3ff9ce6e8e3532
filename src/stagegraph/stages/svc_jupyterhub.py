"""JupyterHub: the chart, its Keycloak login, and the files every JupyterLab server mounts.

What the config sets, and where it lands in the render (all under `locals`):
- theme.jupyterhub           -> jupyterhub_values.custom.theme (the hub's template vars)
- profiles.jupyterlab        -> jupyterhub_values.custom.profiles (see svc_profiles)
- jupyterlab.idle_culler     -> jupyterlab_idle_culler (minutes), used by the server config
                                and the hub's culler
- jupyterlab.default_settings, preferred_dir, initial_repositories, gallery_settings
- telemetry.jupyterlab_pioneer, default_images.jupyterhub/jupyterlab, jupyterhub.overrides
Gallery tokens are secrets: they reach the cluster through sensitive variables into a
Kubernetes secret, never as rendered values.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stagegraph.errors import RenderError
from stagegraph.migrations import Placement, placements
from stagegraph.stage import RenderContext, SensitiveInput
from stagegraph.stages import svc_argo_scheduler, svc_dask_access, svc_hub_scripts, svc_lab_home, svc_roles
from stagegraph.stages.common import deep_merge, helm_release
from stagegraph.stages.svc_images import Image, resolve_image
from stagegraph.stages.svc_kube import NAMESPACE, Route, host, ingress_route, opaque_secret
from stagegraph.stages.svc_oauth import client_id, client_secret_env, endpoints
from stagegraph.stages.svc_profiles import jupyterlab_profiles
from stagegraph.stages.svc_storage import SharedVolumes
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

RELEASE = "jupyterhub"
#: How many gallery exhibits may carry a token (one sensitive variable each).
GALLERY_TOKEN_SLOTS = 8
LAB_SETTINGS_DIR = "/opt/conda/envs/default/share/jupyter/lab/settings"


def gallery_sensitive_inputs() -> tuple[SensitiveInput, ...]:
    return tuple(
        SensitiveInput(
            f"gallery_token_{i}",
            f"jupyterlab.gallery_settings.exhibits.{i}.token",
            f"Token of JupyterLab gallery exhibit {i} (jupyterlab.gallery_settings.exhibits[{i}]).",
        )
        for i in range(GALLERY_TOKEN_SLOTS)
    )


@dataclass(frozen=True)
class HubParts:
    """What the other services contribute to the hub's chart values."""

    values: dict[str, Any]
    after: tuple[Ref, ...] = ()


@dataclass(frozen=True)
class Hub:
    release: Ref
    lab_image: Image
    #: Prefix of the object names of the release serving / ("" for the chart's own names):
    #: services that call the hub (Dask Gateway) follow it through a migration.
    prefix: str = ""


def jupyterhub(
    ctx: RenderContext,
    m: TerraformModule,
    nodes: dict[str, str],
    volumes: SharedVolumes,
    parts: Iterable[HubParts],
    *,
    group_overrides: dict[str, dict[str, Any]],
    argo: dict[str, Any],
    extra_mounts: Iterable[tuple[dict[str, str], Ref]] = (),
    skel: Ref | None = None,
) -> Hub:
    lab = resolve_image(
        ctx, "jupyterlab", field="default_images.jupyterlab", ref=ctx.config.default_images.jupyterlab
    )
    hub = resolve_image(
        ctx, "jupyterhub", field="default_images.jupyterhub", ref=ctx.config.default_images.jupyterhub
    )
    mounts, mounted = _lab_config_files(ctx, m)
    # Files other services hand to every server (dask-etc at /etc/dask).
    for mount, ref in extra_mounts:
        mounts.append(mount)
        mounted.append(ref)
    if skel is not None:
        mounted.append(skel)
    extras = list(parts)
    custom = {
        "theme": _theme(ctx),
        "profiles": jupyterlab_profiles(ctx),
        "group-overrides": group_overrides,
        "shared-pvc": volumes.home,
        "conda-store-pvc": volumes.conda_store,
        "conda-store-default-namespace": literal(ctx.config.conda_store.default_namespace),
        "init-image": lab.ref,
        "initial-repositories": literal(ctx.config.jupyterlab.initial_repositories),
        "config-mounts": mounts,
        "argo-workflows": argo,
        "roles": svc_roles.hub_roles(ctx),
        "skel-config-map": svc_lab_home.SKEL_CONFIG_MAP if skel is not None else None,
    }
    values = _values(hub, lab, nodes, custom)
    for part in extras:
        values = deep_merge(values, part.values)
    values = deep_merge(values, literal(dict(ctx.config.jupyterhub.overrides)))
    # A phased major-version migration renders a second release (stagegraph.migrations);
    # with none under way this is the one release "jupyterhub" on /, as always.
    releases: list[Ref] = []
    for place in placements(RELEASE, "jupyterhub", "jupyterhub_next", ctx.config.jupyterhub.next_major):
        release: Ref = helm_release(
            m,
            ctx,
            place.release,
            place.chart_pin,
            NAMESPACE,
            _at_route(values, place),
            timeout=900,
            depends_on=depends(*volumes.ready, *mounted, *(r for p in extras for r in p.after)),
        )
        releases.append(release)
        proxy = f"{place.prefix}-proxy-public" if place.prefix else "proxy-public"
        paths = (
            "Path(`/`) || PathPrefix(`/hub`) || PathPrefix(`/user`) || PathPrefix(`/services`)"
            if place.at_root
            else f"PathPrefix(`{place.route}`)"
        )
        name = "jupyterhub" if place.at_root else f"{RELEASE}-{place.route.strip('/')}"
        ingress_route(m, name, [Route(host(paths), proxy, 80)], after=(release,))
    root = placements(RELEASE, "jupyterhub", "jupyterhub_next", ctx.config.jupyterhub.next_major)[0]
    return Hub(release=releases[0], lab_image=lab, prefix=root.prefix)


def _at_route(values: dict[str, Any], place: Placement) -> dict[str, Any]:
    """The hub's values for a release at `place`: its names, base URL and login callbacks."""
    if place.at_root and not place.prefix:
        return values
    out = copy.deepcopy(values)
    if place.prefix:
        out["fullnameOverride"] = place.prefix
    if not place.at_root:
        out["hub"]["baseUrl"] = f"{place.route}/"
    oauth = out["hub"]["config"]["GenericOAuthenticator"]
    oauth["oauth_callback_url"] = "https://${var.domain}" + place.path("/hub/oauth_callback")
    oauth["logout_redirect_url"] = oauth["logout_redirect_url"].replace(
        '"https://${var.domain}/hub/login"', '"https://${var.domain}' + place.path("/hub/login") + '"'
    )
    return out


def _values(hub: Image, lab: Image, nodes: dict[str, str], custom: dict[str, Any]) -> dict[str, Any]:
    ep = endpoints()
    culler = "local.jupyterlab_idle_culler"
    return {
        "hub": {
            "image": hub.helm(),
            "nodeSelector": nodes["general"],
            "config": {
                "JupyterHub": {"authenticator_class": "generic-oauth"},
                "Authenticator": {"enable_auth_state": True},
                "GenericOAuthenticator": {
                    "client_id": client_id("jupyterhub"),
                    "oauth_callback_url": "https://${var.domain}/hub/oauth_callback",
                    "authorize_url": ep["authorize"],
                    "token_url": ep["token"],
                    "userdata_url": ep["userinfo"],
                    "logout_redirect_url": f"{ep['logout']}?post_logout_redirect_uri="
                    '${urlencode("https://${var.domain}/hub/login")}&client_id='
                    f"{client_id('jupyterhub')}",
                    "login_service": "Keycloak",
                    "username_claim": "preferred_username",
                    "claim_groups_key": "groups",
                    "scope": ["openid", "profile", "email", "roles"],
                    "allowed_groups": "${var.groups}",
                    "admin_groups": ["admin"],
                    "manage_groups": True,
                },
            },
            # GenericOAuthenticator reads its secret from this variable, which the pod takes
            # from 06's client secret: the value never enters Terraform.
            "extraEnv": {
                "OAUTH_CLIENT_SECRET": _env_source(client_secret_env("OAUTH_CLIENT_SECRET", "jupyterhub"))
            },
            "extraConfig": {
                "01-theme.py": literal(svc_hub_scripts.THEME),
                "03-profiles.py": literal(svc_hub_scripts.PROFILES),
                # Replaces the generic-oauth class above with its role-applying subclass.
                "04-roles.py": literal(svc_roles.ROLES_SCRIPT),
            },
            "services": {svc_dask_access.SERVICE: {"display": False}},
            # The gateway's token checks return the user's roles (who may use Dask).
            "loadRoles": {svc_dask_access.SERVICE: svc_dask_access.hub_service_role()},
        },
        "proxy": {"service": {"type": "ClusterIP"}, "chp": {"nodeSelector": nodes["general"]}},
        "singleuser": {
            "image": {
                **lab.helm(),
                "pullSecrets": "${var.registry_pull_secret == null ? [] : [var.registry_pull_secret]}",
            },
            "nodeSelector": nodes["user"],
            # Homes live on the shared volume (mounted per profile by the PROFILES script).
            "storage": {"type": "none"},
            "defaultUrl": "/lab",
            "startTimeout": 600,
        },
        "scheduling": {
            "userScheduler": {"nodeSelector": nodes["general"]},
            "userPlaceholder": {"enabled": False},
        },
        "prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}},
        "ingress": {"enabled": False},
        # The hub's culler is the backstop for servers that never stop themselves: the
        # longest kernel/terminal idle time plus the server's own no-activity shutdown.
        "cull": {
            "enabled": True,
            "users": False,
            "timeout": f"${{(max({culler}.kernel_cull_idle_timeout, {culler}.terminal_cull_inactive_timeout)"
            f" + {culler}.server_shutdown_no_activity_timeout) * 60}}",
        },
        "custom": custom,
    }


def _env_source(env: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in env.items() if k != "name"}


def _theme(ctx: RenderContext) -> dict[str, Any]:
    theme = ctx.config.theme.jupyterhub.model_dump(mode="json")
    if theme["version"] is None:
        theme["version"] = f"v{ctx.config.nebari_version}"
    return dict(literal(theme))


def _lab_config_files(ctx: RenderContext, m: TerraformModule) -> tuple[list[dict[str, str]], list[Ref]]:
    """The ConfigMaps and the Secret mounted into every JupyterLab server."""
    lab = ctx.config.jupyterlab
    minutes = "local.jupyterlab_idle_culler"
    m.local("jupyterlab_idle_culler", lab.idle_culler.model_dump(mode="json"))
    server: dict[str, Any] = {
        "ContentsManager": {"allow_hidden": True},
        "FileContentsManager": {"allow_hidden": True},
        "TerminalManager": {
            "cull_inactive_timeout": f"${{{minutes}.terminal_cull_inactive_timeout * 60}}",
            "cull_interval": f"${{{minutes}.terminal_cull_interval * 60}}",
        },
        "MappingKernelManager": {
            "cull_idle_timeout": f"${{{minutes}.kernel_cull_idle_timeout * 60}}",
            "cull_interval": f"${{{minutes}.kernel_cull_interval * 60}}",
            "cull_connected": f"${{{minutes}.kernel_cull_connected}}",
            "cull_busy": f"${{{minutes}.kernel_cull_busy}}",
        },
        "ServerApp": {
            "shutdown_no_activity_timeout": f"${{{minutes}.server_shutdown_no_activity_timeout * 60}}"
        },
    }
    if lab.preferred_dir is not None:
        server["FileContentsManager"]["preferred_dir"] = literal(lab.preferred_dir)
    m.local("jupyter_server_config", server)
    etc: dict[str, str] = {"jupyter_server_config.json": "${jsonencode(local.jupyter_server_config)}"}
    pioneer = ctx.config.telemetry.jupyterlab_pioneer
    if pioneer.enabled:
        m.local("jupyterlab_pioneer", {"log_format": literal(pioneer.log_format)})
        etc["jupyterlab_pioneer.json"] = "${jsonencode(local.jupyterlab_pioneer)}"
        etc["jupyter_jupyterlab_pioneer_config.py"] = literal(svc_hub_scripts.PIONEER)
    if ctx.config.argo_workflows.enabled:
        etc["jupyter_server_config.py"] = literal(svc_argo_scheduler.SERVER_CONFIG)
    m.local("jupyterlab_default_settings", literal(dict(lab.default_settings)))
    m.local("jupyterlab_gallery", {"GalleryManager": _gallery(ctx)})
    made = [
        _config_map(m, "etc-jupyter", etc),
        _config_map(
            m, "jupyterlab-settings", {"overrides.json": "${jsonencode(local.jupyterlab_default_settings)}"}
        ),
        # A secret, not a ConfigMap: exhibits may carry tokens.
        opaque_secret(
            m,
            "jupyterlab-gallery",
            {"jupyter_gallery_config.json": "${jsonencode(local.jupyterlab_gallery)}"},
        ),
    ]
    mounts = [
        {"name": "etc-jupyter", "kind": "configmap", "mount_path": "/etc/jupyter"},
        {"name": "jupyterlab-settings", "kind": "configmap", "mount_path": LAB_SETTINGS_DIR},
        # Jupyter reads config from every directory on its path; this one is otherwise empty.
        {"name": "jupyterlab-gallery", "kind": "secret", "mount_path": "/usr/local/etc/jupyter"},
    ]
    return mounts, made


def _gallery(ctx: RenderContext) -> dict[str, Any]:
    gallery = ctx.config.jupyterlab.gallery_settings
    exhibits: list[dict[str, Any]] = []
    for i, exhibit in enumerate(gallery.exhibits):
        entry = literal(exhibit.model_dump(mode="json", exclude_none=True, exclude={"token"}))
        if exhibit.token is not None:
            if i >= GALLERY_TOKEN_SLOTS:
                raise RenderError(
                    f"nebari-config.yaml: jupyterlab.gallery_settings.exhibits.{i}.token: only the first "
                    f"{GALLERY_TOKEN_SLOTS} exhibits may carry a token; move this exhibit up or drop its token"
                )
            entry["token"] = f"${{var.gallery_token_{i}}}"
        exhibits.append(entry)
    return {
        "title": literal(gallery.title),
        "destination": literal(gallery.destination),
        "hide_gallery_without_exhibits": gallery.hide_gallery_without_exhibits,
        "exhibits": exhibits,
    }


def _config_map(m: TerraformModule, name: str, data: dict[str, str]) -> Ref:
    return m.resource(
        "kubernetes_config_map",
        name.replace("-", "_"),
        {"metadata": [{"name": name, "namespace": NAMESPACE}], "data": data},
    )
