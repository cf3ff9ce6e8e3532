"""The Kubernetes version of a cloud cluster: the config's, or the lockfile's maximum.

Checked offline against `kubernetes.max_version` (the newest minor this release was tested
with), at validate and again at render, with the same one-line message.
"""

from __future__ import annotations

from typing import Any

from stagegraph.errors import RenderError

SECTION = {"aws": "amazon_web_services", "gcp": "google_cloud_platform", "azure": "azure"}


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def version_problem(provider: str, wanted: str | None, max_version: str, lockfile: str) -> str | None:
    """Why the config's version cannot be deployed, as `<section>.kubernetes_version: ...`."""
    if wanted is None or provider not in SECTION:
        return None
    if _minor(wanted) > _minor(max_version):
        return (
            f"{SECTION[provider]}.kubernetes_version: newer than {lockfile} kubernetes.max_version "
            f"{max_version}, the newest this release is tested with; use {max_version} or older "
            f"(got {wanted!r})"
        )
    return None


def cluster_version(provider: str, section: Any, max_version: str, lockfile: str) -> str:
    wanted: str | None = section.kubernetes_version
    problem = version_problem(provider, wanted, max_version, lockfile)
    if problem:
        raise RenderError(f"nebari-config.yaml: {problem}")
    return wanted or max_version


def check_config_version(config: Any, max_version: str, config_name: str, lockfile: str) -> None:
    """`doit validate`: refuse a cloud Kubernetes version newer than the lockfile allows."""
    from stagegraph.errors import ConfigError

    section = getattr(config, SECTION.get(config.provider, ""), None)
    if section is None:
        return
    problem = version_problem(config.provider, section.kubernetes_version, max_version, lockfile)
    if problem:
        raise ConfigError(config_name, [f"{config_name}: {problem}"])
