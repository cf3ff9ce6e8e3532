"""The kubeconfig of an `existing` cluster, found the way kubectl finds it.

Where from, first that applies: `existing.kubeconfig` in the config (relative to the config
file's folder), the `KUBECONFIG` environment variable (a list separated by `os.pathsep`;
files that do not exist are skipped, as kubectl skips them), `~/.kube/config`. The files
are merged by kubectl's rules: the first file to define a named context, cluster or user
wins, and the current context is the first one any file sets. The context is
`existing.kube_context`, else that current context.

Terraform's kubernetes, helm and kubectl providers and the Kubernetes client all take one
file and a context, so the result is the one file that holds the chosen context and, by
the merge rules, its cluster and user, with the context named explicitly. A context whose
parts the merge takes from different files cannot be handed on as one file; that is
refused, saying how to write one file for it. Nothing is copied: credentials stay in the
user's own kubeconfig, never in the deployment folder.

This runs at deploy time (it reads the environment and files, so never inside a render);
its result becomes variables of 02-infrastructure, so a different kubeconfig or context
re-applies 02 and every stage that reaches the cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stagegraph.kube.client import KubeError, KubeTarget

KUBECONFIG_ENV = "KUBECONFIG"


@dataclass(frozen=True)
class KubeconfigSource:
    """The kubeconfig file(s) to read, in order, and what chose them (for errors)."""

    paths: tuple[Path, ...]
    origin: str

    def describe(self) -> str:
        files = ", ".join(str(p) for p in self.paths) or "(none)"
        return f"kubeconfig {files} (from {self.origin})"


def kubeconfig_source(
    configured: str | None,
    *,
    config_dir: Path,
    config_name: str,
    environ: Mapping[str, str],
    home: Path,
    cwd: Path,
) -> KubeconfigSource:
    """The file(s) kubectl would read, with `existing.kubeconfig` taking precedence."""
    if configured:
        return KubeconfigSource((_absolute(configured, config_dir),), f"existing.kubeconfig in {config_name}")
    listed = environ.get(KUBECONFIG_ENV, "")
    if listed.strip():
        paths = []
        for item in listed.split(os.pathsep):
            if item.strip():
                paths.append(_absolute(item.strip(), cwd))
        return KubeconfigSource(tuple(paths), f"the {KUBECONFIG_ENV} environment variable")
    return KubeconfigSource((home / ".kube" / "config",), "the default ~/.kube/config")


def _absolute(value: str, base: Path) -> Path:
    """`~` expanded, relative to `base`, `..` folded: the path as outputs and errors show it."""
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def _load(path: Path, source: KubeconfigSource) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KubeError(f"{path}: cannot read the kubeconfig ({exc.strerror}); {source.describe()}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise KubeError(f"{path}: not valid YAML{where}; fix the kubeconfig ({source.describe()})") from None
    if data is None:
        return {}  # an empty file, as kubectl allows
    if not isinstance(data, dict):
        raise KubeError(f"{path}: not a kubeconfig (the top level is not a mapping); {source.describe()}")
    return data


def _named(data: Mapping[str, Any], key: str, path: Path) -> dict[str, Mapping[str, Any]]:
    """`clusters` / `users` / `contexts` of one file, by name (kubeconfig's list-of-named shape)."""
    items = data.get(key) or []
    if not isinstance(items, list):
        raise KubeError(f"{path}: {key}: should be a list of named entries")
    out: dict[str, Mapping[str, Any]] = {}
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            out.setdefault(item["name"], item.get(key[:-1]) or {})
    return out


def resolve_kubeconfig(source: KubeconfigSource, context: str | None, *, context_field: str) -> KubeTarget:
    """The one file holding `context` (or the merged current context) and its name.

    `context_field` names the config field for the context in errors
    (`existing.kube_context in nebari-config.yaml`).
    """
    files = [(path, data) for path in source.paths if (data := _load(path, source)) is not None]
    if not files:
        raise KubeError(
            f"{source.describe()}: no such file; point existing.kubeconfig or {KUBECONFIG_ENV} at the "
            "cluster's kubeconfig (kubectl must find it too: `kubectl config get-contexts`)"
        )
    first: dict[str, dict[str, Path]] = {"contexts": {}, "clusters": {}, "users": {}}
    entries: dict[str, Mapping[str, Any]] = {}
    current: str | None = None
    for path, data in files:
        for key, by_name in first.items():
            for name, body in _named(data, key, path).items():
                if name not in by_name:  # kubectl: the first file to define a name wins
                    by_name[name] = path
                    if key == "contexts":
                        entries[name] = body
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
    chosen = context or current
    known = ", ".join(sorted(first["contexts"])) or "none"
    if not chosen:
        raise KubeError(
            f"{source.describe()}: no current-context, and {context_field} is not set; "
            f"set it to one of the contexts: {known}"
        )
    if chosen not in entries:
        which = f"{context_field}: {chosen!r}" if context else f"current-context {chosen!r}"
        raise KubeError(f"{source.describe()}: {which} is not a context there (contexts: {known})")
    body = entries[chosen]
    home = first["contexts"][chosen]
    cluster, user = body.get("cluster"), body.get("user")
    if not isinstance(cluster, str) or cluster not in first["clusters"]:
        raise KubeError(f"{home}: context {chosen!r} names cluster {cluster!r}, which no file defines")
    if user and (not isinstance(user, str) or user not in first["users"]):
        raise KubeError(f"{home}: context {chosen!r} names user {user!r}, which no file defines")
    parts = {"cluster": first["clusters"][cluster], **({"user": first["users"][str(user)]} if user else {})}
    elsewhere = {part: path for part, path in parts.items() if path != home}
    if elsewhere:
        where = ", ".join(f"its {part} from {path}" for part, path in sorted(elsewhere.items()))
        raise KubeError(
            f"{source.describe()}: context {chosen!r} is in {home} but the merge takes {where}; "
            "Terraform and the Kubernetes client read one file: write one with `kubectl config view "
            f"--flatten --minify --context {chosen} > FILE` and set existing.kubeconfig to it"
        )
    return KubeTarget(str(home), chosen)
