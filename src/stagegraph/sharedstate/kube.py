"""The Kubernetes store of shared state: in the cluster, next to Terraform's state Secrets.

Terraform's kubernetes backend keeps each stage's state in a Secret
`tfstate-default-<secret_suffix>` (and locks it with a Lease while it runs). In the same
namespace stagegraph keeps:

- each stage's record in a ConfigMap `stagegraph-<deployment>-<stage>` (key `record.json`),
  labelled `app.kubernetes.io/managed-by: stagegraph` and
  `stagegraph.nebari.dev/deployment: <deployment>`. ConfigMaps, not Secrets: records hold
  digests and non-secret outputs only, and a ConfigMap can be readable by people who must
  not read the Secrets (Terraform state holds every secret of the deployment): a read-only
  role for `doit status` gets `configmaps` and `leases`, never `secrets`.
- the lock in a coordination.k8s.io/v1 Lease `stagegraph-<deployment>-lock`:
  `holderIdentity` (user@host pid), `leaseDurationSeconds`, `acquireTime`, `renewTime`, as
  `kubectl get lease` shows them, and the full holder record in an annotation.

Every write is conditional on the resourceVersion this run read (a PUT naming a stale one is
a 409 Conflict; a DELETE carries a resourceVersion precondition), creates are POSTs (409
AlreadyExists when another run was first). The cluster is reached through the same
kubeconfig and context as the stages; the `kubernetes` client is imported only inside
actions (`stagegraph.kube.client`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stagegraph.sharedstate.store import LOCK_OBJECT, RECORDS_FOLDER, ConditionalStore, Versioned

if TYPE_CHECKING:
    from stagegraph.kube.client import KubeClient, KubeTarget

MANAGED_BY = "app.kubernetes.io/managed-by"
DEPLOYMENT_LABEL = "stagegraph.nebari.dev/deployment"
STAGE_ANNOTATION = "stagegraph.nebari.dev/stage"
HOLDER_ANNOTATION = "stagegraph.nebari.dev/holder"
RECORD_KEY = "record.json"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class KubeLocation:
    """The cluster, namespace and deployment name of a deployment's shared state."""

    target: KubeTarget
    namespace: str
    #: Names this deployment's objects apart from others in the namespace (project-namespace).
    deployment: str

    def lease_name(self) -> str:
        return f"stagegraph-{self.deployment}-lock"

    def configmap_name(self, stage: str) -> str:
        lowered = stage.lower()
        if _DNS_LABEL.match(lowered) and lowered == stage:
            return f"stagegraph-{self.deployment}-{stage}"
        # A plugin's stage named with capitals, '_' or '.': a name of its own, kept unique.
        safe = re.sub(r"[^a-z0-9-]", "-", lowered).strip("-") or "stage"
        return f"stagegraph-{self.deployment}-{safe}-{hashlib.sha256(stage.encode()).hexdigest()[:8]}"


class KubeStore(ConditionalStore):
    """ConfigMaps and a Lease in one namespace, through the Kubernetes API."""

    def __init__(self, where: KubeLocation) -> None:
        self.where = where
        self.requests = 0
        self._client: KubeClient | None = None

    def _api(self) -> KubeClient:
        if self._client is None:
            from stagegraph.kube.client import KubeClient, api_client

            self._client = KubeClient(api_client(self.where.target), self.where.target)
        return self._client

    # --- names ---------------------------------------------------------------------------------

    def _path(self, name: str, collection: bool = False) -> tuple[str, str]:
        """(API path, object name) for a store name."""
        ns = self.where.namespace
        if name == LOCK_OBJECT:
            base = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
            obj = self.where.lease_name()
        else:
            stage = name.removeprefix(f"{RECORDS_FOLDER}/").removesuffix(".json")
            base = f"/api/v1/namespaces/{ns}/configmaps"
            obj = self.where.configmap_name(stage)
        return (base if collection else f"{base}/{obj}"), obj

    def describe(self, name: str = "") -> str:
        where = f"namespace {self.where.namespace} ({self.where.target.describe()})"
        if not name:
            return f"configmaps of {self.where.deployment} in {where}"
        kind = "lease" if name == LOCK_OBJECT else "configmap"
        return f"{kind} {self._path(name)[1]} in {where}"

    # --- requests ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        """The answer; None for 404 NotFound and 409 Conflict/AlreadyExists."""
        from stagegraph.kube.client import KubeApiError

        self.requests += 1
        try:
            return self._api().request(method, path, **kwargs)
        except KubeApiError as exc:
            if exc.status in (404, 409):
                return None
            raise

    def get(self, name: str) -> Versioned | None:
        got = self._request("GET", self._path(name)[0])
        if got is None:
            return None
        return Versioned(_content(name, got), str(got["metadata"]["resourceVersion"]))

    def create(self, name: str, data: bytes) -> str | None:
        from stagegraph.errors import StagegraphError
        from stagegraph.kube.client import KubeApiError

        path, _ = self._path(name, collection=True)
        self.requests += 1
        try:
            made = self._api().request("POST", path, body=self._object(name, data))
        except KubeApiError as exc:
            if exc.status == 409:  # AlreadyExists: someone else's, the condition failed
                return None
            if exc.status == 404:  # POST to a collection: its namespace is missing
                raise StagegraphError(
                    f"{self.describe(name)}: the namespace does not exist; create it, or name one that "
                    "does in terraform_state.config.namespace"
                ) from None
            raise
        return str(made["metadata"]["resourceVersion"])

    def replace(self, name: str, data: bytes, version: str) -> str | None:
        body = self._object(name, data)
        body["metadata"]["resourceVersion"] = version
        put = self._request("PUT", self._path(name)[0], body=body)
        return None if put is None else str(put["metadata"]["resourceVersion"])

    def delete(self, name: str, version: str | None = None) -> bool:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if version is not None:
            body["preconditions"] = {"resourceVersion": version}
        return self._request("DELETE", self._path(name)[0], body=body) is not None

    def list(self, folder: str) -> list[str]:
        path, _ = self._path(f"{folder}/x.json", collection=True)
        selector = f"{MANAGED_BY}=stagegraph,{DEPLOYMENT_LABEL}={self.where.deployment}"
        listed = self._request("GET", path, query=[("labelSelector", selector)]) or {}
        names = []
        for item in listed.get("items", []):
            stage = (item.get("metadata", {}).get("annotations") or {}).get(STAGE_ANNOTATION)
            if isinstance(stage, str):
                names.append(f"{stage}.json")
        return names

    # --- objects -------------------------------------------------------------------------------

    def _object(self, name: str, data: bytes) -> dict[str, Any]:
        _, obj = self._path(name)
        labels = {MANAGED_BY: "stagegraph", DEPLOYMENT_LABEL: self.where.deployment}
        meta: dict[str, Any] = {"name": obj, "namespace": self.where.namespace, "labels": labels}
        if name == LOCK_OBJECT:
            holder = json.loads(data)
            meta["annotations"] = {HOLDER_ANNOTATION: data.decode()}
            return {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": meta,
                "spec": {
                    "holderIdentity": f"{holder['user']}@{holder['host']} pid {holder['pid']}",
                    "leaseDurationSeconds": max(1, math.ceil(float(holder["lease_s"]))),
                    "acquireTime": _micro(holder["since"]),
                    "renewTime": holder["renewed"],
                },
            }
        stage = name.removeprefix(f"{RECORDS_FOLDER}/").removesuffix(".json")
        meta["annotations"] = {STAGE_ANNOTATION: stage}
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {RECORD_KEY: data.decode()},
        }


def _micro(stamp: str) -> str:
    """`2026-01-02T03:04:05Z` as a MicroTime (`...05.000000Z`), the form Lease times take."""
    return stamp[:-1] + ".000000Z" if stamp.endswith("Z") and "." not in stamp else stamp


def _content(name: str, obj: dict[str, Any]) -> bytes:
    if name == LOCK_OBJECT:
        text = (obj.get("metadata", {}).get("annotations") or {}).get(HOLDER_ANNOTATION, "")
    else:
        text = (obj.get("data") or {}).get(RECORD_KEY, "")
    return str(text).encode()
