"""Python that JupyterHub runs at start (the chart's `hub.extraConfig`).

These scripts are fixed text: everything that comes from the config reaches them as data
under the chart's `custom` values (read with `z2jh.get_config`), so a config change shows
up in the rendered files as the changed value, not as a changed script. The tests execute
PROFILES against the rendered `custom` values to check who sees which profile.
"""

from __future__ import annotations

THEME = """\
# stagegraph 07: the hub pages' look, from nebari-config.yaml `theme.jupyterhub`.
import z2jh

c.JupyterHub.template_paths = ["/usr/local/share/jupyterhub/custom_templates/"]
c.JupyterHub.template_vars = z2jh.get_config("custom.theme", {})
"""

PROFILES = """\
# stagegraph 07: JupyterLab profiles per user, from nebari-config.yaml `profiles.jupyterlab`.
# Who sees a profile follows its `access`:
#   all      everyone;
#   yaml     the users listed in `users` and the members of the groups in `groups`;
#   keycloak users whose token lists the profile's display name in `jupyterlab_profiles`.
# Every profile also gets the user's home, group and conda-store mounts, and the
# overrides of each Keycloak group the user is in (custom.group-overrides).
import copy
import json
import shlex

import z2jh


def merge(base, extra):
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            # Two groups may hand out the same secret: a pod must not list it twice.
            out[key] = old + [item for item in value if item not in old]
        else:
            out[key] = value
    return out


def visible(profile, username, groups, keycloak_profiles):
    access = profile.get("access", "all")
    if access == "yaml":
        users = profile.get("users") or []
        allowed_groups = profile.get("groups") or []
        return username in users or bool(set(groups) & set(allowed_groups))
    if access == "keycloak":
        return profile.get("display_name") in keycloak_profiles
    return True


def storage(username, groups):
    conda_namespaces = [username, z2jh.get_config("custom.conda-store-default-namespace"), "global", *groups]
    volumes = [
        {"name": "home", "persistentVolumeClaim": {"claimName": z2jh.get_config("custom.shared-pvc")}},
        {"name": "conda-store", "persistentVolumeClaim": {"claimName": z2jh.get_config("custom.conda-store-pvc")}},
    ]
    mounts = [{"name": "home", "mountPath": f"/home/{username}", "subPath": f"home/{username}"}]
    mounts += [{"name": "home", "mountPath": f"/shared/{g}", "subPath": f"shared/{g}"} for g in groups]
    mounts += [
        {"name": "conda-store", "mountPath": f"/home/conda/{ns}", "subPath": ns, "readOnly": True}
        for ns in conda_namespaces
    ]
    for item in z2jh.get_config("custom.config-mounts", []):
        if item["kind"] == "configmap":
            source = {"configMap": {"name": item["name"]}}
        else:
            source = {"secret": {"secretName": item["name"]}}
        volumes.append({"name": item["name"], **source})
        mounts.append({"name": item["name"], "mountPath": item["mount_path"], "readOnly": True})
    dirs = [f"/mnt/home/home/{username}", *(f"/mnt/home/shared/{g}" for g in groups)]
    dirs += [f"/mnt/conda/{ns}" for ns in conda_namespaces]
    command = " && ".join(f"mkdir -p {shlex.quote(d)} && chmod 777 {shlex.quote(d)}" for d in dirs)
    init_mounts = [
        {"name": "home", "mountPath": "/mnt/home"},
        {"name": "conda-store", "mountPath": "/mnt/conda"},
    ]
    skel = z2jh.get_config("custom.skel-config-map")
    if skel:
        # Skeleton files the home lacks (a user's own edits are never overwritten). The
        # pattern skips the ConfigMap's ..data links; no braces, as KubeSpawner formats it.
        home = shlex.quote(f"/mnt/home/home/{username}")
        command += (
            ' && for f in /etc/skel/.[!.]* /etc/skel/*; do [ -e "$f" ] || continue; '
            f't={home}/$(basename "$f"); [ -e "$t" ] || (cp -rL "$f" "$t" && chown -R 1000:100 "$t"); done'
        )
        volumes.append({"name": "skel", "configMap": {"name": skel}})
        init_mounts.append({"name": "skel", "mountPath": "/etc/skel", "readOnly": True})
    init = [
        {
            "name": "initialize-directories",
            "image": z2jh.get_config("custom.init-image"),
            "command": ["sh", "-c", command],
            "securityContext": {"runAsUser": 0},
            "volumeMounts": init_mounts,
        }
    ]
    clones = [
        f"[ -d {shlex.quote(folder)} ] || git clone {shlex.quote(url)} {shlex.quote(folder)}"
        for repo in z2jh.get_config("custom.initial-repositories", [])
        for folder, url in repo.items()
    ]
    if clones:
        init.append(
            {
                "name": "clone-initial-repositories",
                "image": z2jh.get_config("custom.init-image"),
                "command": ["sh", "-c", " ; ".join(clones)],
                "workingDir": f"/home/{username}",
                "securityContext": {"runAsUser": 1000},
                "volumeMounts": [{"name": "home", "mountPath": f"/home/{username}", "subPath": f"home/{username}"}],
            }
        )
    condarc = json.dumps({"envs_dirs": [f"/home/conda/{ns}/envs" for ns in conda_namespaces]})
    return {
        "volumes": volumes,
        "volume_mounts": mounts,
        "init_containers": init,
        "uid": 1000,
        "gid": 100,
        "fs_gid": 100,
        "notebook_dir": f"/home/{username}",
        "working_dir": f"/home/{username}",
        "environment": {"HOME": f"/home/{username}", "SHELL": "/bin/bash", "NB_UMASK": "0002"},
        "lifecycle_hooks": {
            "postStart": {
                "exec": {"command": ["sh", "-c", f"printf %s {shlex.quote(condarc)} > /home/{username}/.condarc"]}
            }
        },
    }


def argo(groups):
    settings = z2jh.get_config("custom.argo-workflows", {})
    if not settings.get("enabled"):
        return {}
    account = next((sa for group, sa in settings["service-accounts"] if group in groups), None)
    if account is None:
        return {}
    token = {"valueFrom": {"secretKeyRef": {"name": f"{account}.service-account-token", "key": "token"}}}
    environment = {
        "ARGO_BASE_HREF": "/argo",
        "ARGO_SERVER": settings["server"],
        "ARGO_NAMESPACE": settings["namespace"],
        "ARGO_TOKEN": token,
    }
    secret = settings.get("conda-store-token-secret")
    if secret:
        # argo-jupyter-scheduler looks up a job's conda-store environment with these.
        for env, key in (
            ("CONDA_STORE_TOKEN", "conda-store-api-token"),
            ("CONDA_STORE_SERVICE", "conda-store-service-name"),
            ("CONDA_STORE_SERVICE_NAMESPACE", "conda-store-service-namespace"),
        ):
            environment[env] = {"valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
    return {"environment": environment}


def group_overrides(groups):
    out = {}
    fragments = z2jh.get_config("custom.group-overrides", {}) or {}
    for group in sorted(groups):
        out = merge(out, fragments.get(group) or {})
    return out


async def profile_list(spawner):
    user = spawner.user
    groups = sorted(group.name for group in user.groups)
    auth_state = await user.get_auth_state() or {}
    claims = auth_state.get("oauth_user") or {}
    keycloak_profiles = set(claims.get("jupyterlab_profiles") or [])
    base = merge(merge(storage(user.name, groups), argo(groups)), group_overrides(groups))
    profiles = []
    for profile in z2jh.get_config("custom.profiles", []):
        if not visible(profile, user.name, groups, keycloak_profiles):
            continue
        entry = {k: copy.deepcopy(v) for k, v in profile.items() if k not in ("access", "users", "groups")}
        entry["kubespawner_override"] = merge(base, entry.get("kubespawner_override") or {})
        profiles.append(entry)
    return profiles


c.KubeSpawner.profile_list = profile_list
"""

JHUB_APPS = """\
# stagegraph 07: jhub-apps (nebari-config.yaml `jhub_apps`), installed in the hub image.
import z2jh
from jhub_apps import theme_template_paths
from jhub_apps.configuration import install_jhub_apps
from kubespawner import KubeSpawner

settings = z2jh.get_config("custom.jhub-apps", {})
c.JupyterHub.bind_url = settings["bind_url"]
c.JupyterHub.default_url = "/hub/home"
c.JAppsConfig.jupyterhub_config_path = "/usr/local/etc/jupyterhub/jupyterhub_config.py"
c.JAppsConfig.hub_host = "hub"
for key, value in (settings.get("overrides") or {}).items():
    setattr(c.JAppsConfig, key, value)
c.JupyterHub.template_paths = [*theme_template_paths, *c.JupyterHub.template_paths]
# The platform's other services as tiles of the launcher's home page (no proxy route: their
# own ingress routes serve them), as Nebari lists them.
c.JupyterHub.services.extend(
    {"name": link["name"], "display": True, "info": {"name": link["name"], "url": link["url"], "external": True}}
    for link in settings.get("links", [])
)
c = install_jhub_apps(c, spawner_to_subclass=KubeSpawner, oauth_no_confirm=True)
"""

PIONEER = """\
# stagegraph 07: jupyterlab-pioneer telemetry (nebari-config.yaml `telemetry`), logged locally.
import json
import logging

with open("/etc/jupyter/jupyterlab_pioneer.json") as handle:
    settings = json.load(handle)
logger = logging.getLogger("jupyterlab_pioneer.nebari")
handler = logging.StreamHandler()
if settings.get("log_format"):
    handler.setFormatter(logging.Formatter(settings["log_format"]))
logger.addHandler(handler)
logger.setLevel(logging.INFO)


def nebari_exporter(args):
    logger.info(json.dumps(args.get("data")))
    return {"exporter": "nebari_exporter"}


c.JupyterLabPioneerApp.exporters = [{"type": "custom_exporter", "args": {"id": "nebari_exporter"}}]
c.JupyterLabPioneerApp.custom_exporter = {"nebari_exporter": nebari_exporter}
"""
