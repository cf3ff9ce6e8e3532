"""What a stage can check against the live cluster after (or before) it applies.

Each check asks the API server one question and raises `KubeCheckError` with a one-line
answer saying what is wrong and which kubectl command shows more. `wait_for` retries a check
for a while, because a load balancer address or a rollout can take a minute to appear.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from stagegraph.errors import DeployError
from stagegraph.kube.client import KubeApiError, KubeClient

T = TypeVar("T")


class KubeCheckError(DeployError):
    """The cluster is not in the state a stage expects."""


class KubernetesVersionError(KubeCheckError):
    """The cluster runs a Kubernetes newer than this release is tested against."""


def wait_for(check: Callable[[], T], timeout: float, interval: float = 5.0) -> T:
    """`check()` until it stops raising KubeCheckError or `timeout` seconds pass (0: once)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except KubeCheckError:
            if time.monotonic() + interval > deadline:
                raise
        time.sleep(interval)


def _get(client: KubeClient, path: str) -> dict[str, Any] | None:
    try:
        return client.request("GET", path)
    except KubeApiError as exc:
        if exc.status == 404:
            return None
        raise


def namespace_exists(client: KubeClient, name: str) -> None:
    ns = _get(client, f"/api/v1/namespaces/{name}")
    if ns is None:
        raise KubeCheckError(
            f"namespace {name} does not exist in the cluster at {client.host}; "
            "re-apply 03-kubernetes-initialize (kubectl get namespaces lists what is there)"
        )
    phase = ns.get("status", {}).get("phase")
    if phase == "Terminating":
        raise KubeCheckError(
            f"namespace {name} is being deleted (phase Terminating); wait for it to go, then re-apply"
        )


def service_address(client: KubeClient, namespace: str, name: str) -> str:
    """The load balancer address (IP or hostname) of a Service of type LoadBalancer."""
    svc = _get(client, f"/api/v1/namespaces/{namespace}/services/{name}")
    if svc is None:
        raise KubeCheckError(
            f"service {namespace}/{name} does not exist; kubectl -n {namespace} get services"
        )
    for entry in svc.get("status", {}).get("loadBalancer", {}).get("ingress", None) or []:
        address = entry.get("ip") or entry.get("hostname")
        if address:
            return str(address)
    raise KubeCheckError(
        f"service {namespace}/{name} has no load balancer address yet; "
        f"see kubectl -n {namespace} describe service {name} (on kind, is MetalLB running?)"
    )


def deployment_ready(client: KubeClient, namespace: str, name: str) -> None:
    """Every replica of the current rollout is ready."""
    dep = _get(client, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    if dep is None:
        raise KubeCheckError(
            f"deployment {namespace}/{name} does not exist; kubectl -n {namespace} get deployments"
        )
    spec, status = dep.get("spec", {}), dep.get("status", {})
    want = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0) or 0)
    updated = int(status.get("updatedReplicas", 0) or 0)
    current = int(status.get("observedGeneration", 0) or 0) >= int(
        dep.get("metadata", {}).get("generation", 0) or 0
    )
    if not current or ready < want or updated < want:
        raise KubeCheckError(
            f"deployment {namespace}/{name} is not ready: {ready} of {want} replica(s) ready"
            f"{'' if current else ', rollout not observed yet'}; see kubectl -n {namespace} describe deployment {name}"
        )


_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def _minor_of(text: str) -> tuple[int, int] | None:
    found = _VERSION.match(text.strip())
    return (int(found.group(1)), int(found.group(2))) if found else None


def cluster_version(client: KubeClient) -> tuple[int, int]:
    """(major, minor) of the API server, from /version (gitVersion, else major/minor)."""
    info = client.request("GET", "/version")
    parsed = _minor_of(str(info.get("gitVersion", "")))
    if parsed is None:
        # Some distributions report minor as "31+"; keep the digits.
        major = re.sub(r"\D", "", str(info.get("major", "")))
        minor = re.sub(r"\D", "", str(info.get("minor", "")))
        parsed = (int(major), int(minor)) if major and minor else None
    if parsed is None:
        raise KubeCheckError(f"{client.host}/version: no Kubernetes version in the answer (got {info!r:.80})")
    return parsed


def kubernetes_version_check(
    client: KubeClient, max_version: str, lockfile: str = "lockfiles/versions.yaml"
) -> str:
    """Refuse a cluster newer than `max_version` (a "major.minor"); the cluster's version."""
    limit = _minor_of(max_version)
    if limit is None:
        raise KubeCheckError(
            f"{lockfile}: kubernetes.max_version: not a major.minor version (got {max_version!r})"
        )
    have = cluster_version(client)
    shown = f"{have[0]}.{have[1]}"
    if have > limit:
        raise KubernetesVersionError(
            f"the cluster at {client.host} runs Kubernetes {shown}, newer than {max_version}, the newest "
            f"this release is tested against ({lockfile}: kubernetes.max_version); use a cluster of "
            f"{max_version} or older, or raise kubernetes.max_version once you have tested {shown}"
        )
    return shown
