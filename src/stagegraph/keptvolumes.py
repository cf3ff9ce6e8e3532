"""Volumes a destroy leaves behind: the claims of the StatefulSets a stage rendered.

Kubernetes keeps the PersistentVolumeClaims a StatefulSet's `volumeClaimTemplates` made
when the StatefulSet is deleted (its retention policy's default), so destroying stage 05
or 07 leaves the PostgreSQL (and Redis) volumes in the namespace. That is the default here
too: a database is the one thing a destroy cannot give back, and an operator who destroys
to rebuild may want it. But it is never silent. `doit destroy` names each kept claim in
its summary with the command that removes it, and `doit destroy --delete-data` deletes
them right after their stage is destroyed (while the cluster is still there).

A later deploy on the same cluster and namespace mounts a kept volume again, so its data
comes back; the database takes the new deploy's generated password (`svc_postgres`'s
postStart hook), so its service can log in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stagegraph.project import Project


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("kind") == "StatefulSet" and isinstance(value.get("spec"), dict):
            yield value
        else:
            for sub in value.values():
                yield from _objects(sub)
    elif isinstance(value, list):
        for sub in value:
            yield from _objects(sub)


def stateful_claims(files: Mapping[str, bytes]) -> list[str]:
    """Claim names (`<template>-<statefulset>-<ordinal>`) of a stage's rendered StatefulSets.

    Pure: reads the stage's Terraform JSON, whose manifests are structured locals.
    """
    claims: list[str] = []
    for name, data in sorted(files.items()):
        if not name.endswith(".tf.json"):
            continue
        for obj in _objects(json.loads(data).get("locals")):
            set_name = (obj.get("metadata") or {}).get("name")
            replicas = obj["spec"].get("replicas", 1)
            if not isinstance(set_name, str) or not isinstance(replicas, int):
                continue
            for template in obj["spec"].get("volumeClaimTemplates") or []:
                claims += [f"{template['metadata']['name']}-{set_name}-{i}" for i in range(replicas)]
    return claims


def stage_claims(stage_dir: Path) -> list[str]:
    """The claims of the render on disk (what was applied: destroy checked it is there)."""
    files = {p.name: p.read_bytes() for p in sorted(stage_dir.glob("*.tf.json"))}
    return stateful_claims(files)


def kept_note(stage: str, namespace: str, claims: list[str]) -> str:
    return (
        f"{stage}: kept volumes {', '.join(claims)} in namespace {namespace} (databases outlive a "
        "destroy; a new deploy here mounts them again, data included); remove them with "
        f"`kubectl -n {namespace} delete pvc {' '.join(claims)}`, or destroy with `--delete-data`"
    )


def after_destroy(project: Project, stage: str, delete_data: bool) -> str | None:
    """The note on what `stage`'s destroy left (None: nothing), deleting it if asked.

    The sandbox and rehearsals have no cluster, so nothing is left behind there.
    """
    config = project.config
    if config.provider == "sandbox" or config.stagegraph.rehearse:
        return None
    claims = stage_claims(project.stage_dir(project.graph[stage]))
    if not claims:
        return None
    if delete_data:
        deleted = delete_claims(project, claims)
        return f"{stage}: deleted volumes {', '.join(deleted) or '(none were left)'}"
    return kept_note(stage, config.namespace, claims)


def delete_claims(project: Project, claims: list[str]) -> list[str]:
    """Delete the claims through the cluster 02-infrastructure recorded; the ones deleted."""
    from stagegraph.errors import StagegraphError
    from stagegraph.kube.client import KubeApiError, KubeTarget, connect

    infra = project.records.get("02-infrastructure")
    kubeconfig = infra.outputs.get("kubeconfig_path") if infra else None
    if not kubeconfig or infra is None:
        raise StagegraphError(
            "doit destroy --delete-data: no cluster recorded by 02-infrastructure; delete the volumes "
            f"with `kubectl -n {project.config.namespace} delete pvc {' '.join(claims)}`"
        )
    namespace = project.config.namespace
    deleted = []
    with connect(KubeTarget(str(kubeconfig), infra.outputs.get("kube_context"))) as client:
        for claim in claims:
            try:
                client.request("DELETE", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
            except KubeApiError as exc:
                if exc.status != 404:  # already gone is what was asked for
                    raise
                continue
            deleted.append(claim)
    return deleted
