"""Secrets for platform users (the `secrets:` section), for stage 07 to render.

Each entry becomes one Kubernetes secret `nebari-user-secret-<name>` in the platform
namespace. Its data never appears in a rendered file: every value arrives at apply time
through ONE sensitive Terraform variable, `user_secrets`, which the engine resolves from
the whole `secrets:` section (`stagegraph.secretvalues.resolve_secret(config, "secrets",
...)` decrypts each entry through the per-run store and returns a JSON object
`{name: value}`). So stage 07 declares, once and statically:

    sensitive=(..., user_secrets_input()),  config_sections=(..., "secrets")

The variable is a string today (the engine declares every sensitive variable as one), so
the module decodes it once into a local; were sensitive inputs to gain a type, it would
become `map(string)` and only `_values_local` would change. Terraform keeps it sensitive
through `jsondecode` and indexing, so plans and logs show `(sensitive value)`.

`user_secret_mounts` returns, per Keycloak group, the KubeSpawner override fragment that
hands the group's secrets to a pod: a `volumes`/`volume_mounts` pair per file secret
(mounted read-only at its path through `subPath`), an `environment` entry with a
`valueFrom.secretKeyRef` per env secret, and `image_pull_secrets` names. The hub applies
the fragments of the groups a user is in (`merge_overrides`), so a pod gets only the
secrets of its user's groups. The Kubernetes secrets themselves sit in the namespace as
any other; keeping users' pods from mounting arbitrary secrets is the hub's job, which
only ever mounts what these fragments name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from posixpath import basename
from typing import Any

from stagegraph.schema.user_secrets import EnvSecret, FileSecret, ImagePullSecret
from stagegraph.stage import RenderContext, SensitiveInput
from stagegraph.tfjson import Ref, TerraformModule

USER_SECRETS_VARIABLE = "user_secrets"
USER_SECRETS_SECTION = "secrets"
SECRET_PREFIX = "nebari-user-secret-"  # noqa: S105 - an object name prefix, not a password
ENV_DATA_KEY = "value"
PULL_DATA_KEY = ".dockerconfigjson"
_LOCAL = "user_secret_values"


def user_secrets_input() -> SensitiveInput:
    """The sensitive input stage 07 declares for every user secret at once."""
    return SensitiveInput(
        USER_SECRETS_VARIABLE,
        USER_SECRETS_SECTION,
        "Values of the secrets: section, as a JSON object {name: value} (set by stagegraph from secrets/).",
    )


def kubernetes_secret_name(name: str) -> str:
    return f"{SECRET_PREFIX}{name}"


def data_key(entry: FileSecret | EnvSecret | ImagePullSecret) -> str:
    """The key inside the Kubernetes secret that holds the value."""
    if isinstance(entry, FileSecret):
        return basename(entry.path_in_pod)
    if isinstance(entry, EnvSecret):
        return ENV_DATA_KEY
    return PULL_DATA_KEY


def _values_local(m: TerraformModule) -> str:
    return m.local(_LOCAL, f"${{jsondecode(var.{USER_SECRETS_VARIABLE})}}")


def user_secret_resources(ctx: RenderContext, m: TerraformModule, namespace: str) -> dict[str, Ref]:
    """One `kubernetes_secret` per entry of `secrets:`, by name; values from the variable."""
    entries = list(ctx.config.secrets)
    if not entries:
        return {}
    _values_local(m)
    refs: dict[str, Ref] = {}
    for entry in entries:
        value = f"${{local.{_LOCAL}[{json.dumps(entry.name)}]}}"
        body: dict[str, Any] = {
            "metadata": [
                {
                    "name": kubernetes_secret_name(entry.name),
                    "namespace": namespace,
                    "labels": {
                        "app.kubernetes.io/managed-by": "stagegraph",
                        "nebari.dev/user-secret": entry.name,
                    },
                }
            ],
            "type": "kubernetes.io/dockerconfigjson" if isinstance(entry, ImagePullSecret) else "Opaque",
            "data": {data_key(entry): value},
        }
        refs[entry.name] = m.resource(
            "kubernetes_secret", f"user_secret_{entry.name.replace('-', '_')}", body
        )
    return refs


def user_secret_mounts(ctx: RenderContext, m: TerraformModule, namespace: str) -> dict[str, dict[str, Any]]:
    """Add the user secrets to `m`; return the KubeSpawner override fragment of each group.

    Groups are Keycloak group names as the config writes them. A group with no secret has
    no entry. Fragment keys: `volumes`, `volume_mounts`, `environment`,
    `image_pull_secrets` (only those that are non-empty).
    """
    user_secret_resources(ctx, m, namespace)
    by_group: dict[str, dict[str, Any]] = {}
    for entry in ctx.config.secrets:
        fragment = _fragment(entry)
        for group in entry.groups:
            by_group[group] = merge_overrides([by_group.get(group, {}), fragment])
    return dict(sorted(by_group.items()))


def _fragment(entry: FileSecret | EnvSecret | ImagePullSecret) -> dict[str, Any]:
    secret = kubernetes_secret_name(entry.name)
    if isinstance(entry, FileSecret):
        volume = f"user-secret-{entry.name}"
        return {
            "volumes": [{"name": volume, "secret": {"secretName": secret}}],
            "volume_mounts": [
                {"name": volume, "mountPath": entry.path_in_pod, "subPath": data_key(entry), "readOnly": True}
            ],
        }
    if isinstance(entry, EnvSecret):
        ref = {"secretKeyRef": {"name": secret, "key": ENV_DATA_KEY}}
        return {"environment": {entry.variable: {"valueFrom": ref}}}
    return {"image_pull_secrets": [secret]}


def merge_overrides(fragments: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The fragments of several groups as one: lists joined without duplicates, env merged.

    Pure data in, data out, so the hub can run the same merge at spawn time on the
    fragments of the groups the user is in.
    """
    out: dict[str, Any] = {}
    for fragment in fragments:
        for key, value in fragment.items():
            if isinstance(value, Mapping):
                out[key] = {**out.get(key, {}), **value}
            else:
                merged = list(out.get(key, []))
                merged += [item for item in value if item not in merged]
                out[key] = merged
    return out
