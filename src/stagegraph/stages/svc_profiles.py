"""JupyterLab profiles as the hub reads them, and per-group spawner overrides.

Each profile of `profiles.jupyterlab` becomes one entry of the chart's
`custom.profiles`, with its access rule spelled out (`access`, and for yaml the `users`
and `groups` lists); the hub's PROFILES script (svc_hub_scripts) applies the rule per user.
"""

from __future__ import annotations

from typing import Any

from stagegraph.stage import RenderContext
from stagegraph.stages.user_secrets import user_secret_mounts
from stagegraph.tfjson import TerraformModule, literal

#: KubeSpawner trait for each key of a user-secrets fragment (stages/user_secrets.py).
_FRAGMENT_TRAITS = {
    "volumes": "volumes",
    "volume_mounts": "volume_mounts",
    "env": "environment",
    "image_pull_secrets": "image_pull_secrets",
}


def jupyterlab_profiles(ctx: RenderContext) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for profile in ctx.config.profiles.jupyterlab:
        entry: dict[str, Any] = {
            "display_name": literal(profile.display_name),
            "description": literal(profile.description),
            "default": profile.default,
            "access": profile.access,
        }
        if profile.access == "yaml":
            entry["users"] = literal(profile.users or [])
            entry["groups"] = literal(profile.groups or [])
        if profile.kubespawner_override is not None:
            entry["kubespawner_override"] = literal(
                profile.kubespawner_override.model_dump(mode="json", exclude_none=True)
            )
        if profile.profile_options:
            entry["profile_options"] = {
                str(key): literal(option.model_dump(mode="json", exclude_none=True))
                for key, option in profile.profile_options.items()
            }
        out.append(entry)
    return out


def group_overrides(ctx: RenderContext, m: TerraformModule, namespace: str) -> dict[str, dict[str, Any]]:
    """KubeSpawner overrides per Keycloak group, merged into every profile of its members.

    The one seam to platform users' secrets (`secrets:`, stages/user_secrets.py): it adds
    their Kubernetes secrets to `m` and says which group mounts which. The hub's PROFILES
    script merges the fragments of the groups a user is in, so a pod gets only those.
    """
    return kubespawner_fragments(user_secret_mounts(ctx, m, namespace))


def kubespawner_fragments(fragments: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """user_secrets fragments (volumes, volume_mounts, env, image_pull_secrets) in KubeSpawner terms."""
    out: dict[str, dict[str, Any]] = {}
    for group, fragment in sorted(fragments.items()):
        translated: dict[str, Any] = {}
        for key, value in fragment.items():
            trait = _FRAGMENT_TRAITS.get(key, key)
            if trait == "environment" and isinstance(value, list):
                # Kubernetes env list -> KubeSpawner's mapping (a dict value is a full spec).
                value = {item["name"]: {k: v for k, v in item.items() if k != "name"} for item in value}
            translated[trait] = value
        out[group] = translated
    return out
