"""Server-side apply and delete of plain manifest dicts.

Server-side apply (a PATCH of type `application/apply-patch+yaml`) makes the API server
merge the manifest and track which fields stagegraph owns: applying an unchanged manifest
writes nothing (the object's resourceVersion stays put), a field removed from the manifest
is removed from the object, and there is no client-side "last applied" annotation to drift.
We force conflicts, as `kubectl apply --server-side --force-conflicts` does: the rendered
manifest is the desired state, and a hand edit of an owned field is drift to undo.

Where an object lives (its plural and whether it is namespaced) comes from a small table
of the kinds stagegraph renders, and from API discovery for any other kind, so a plugin's
manifests work without touching this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stagegraph.errors import DeployError
from stagegraph.kube.client import KubeApiError, KubeClient

FIELD_MANAGER = "stagegraph"
APPLY_PATCH = "application/apply-patch+yaml"

Manifest = dict[str, Any]


class ManifestError(DeployError):
    """A manifest is malformed, or the cluster refused it."""


@dataclass(frozen=True)
class ObjectRef:
    """Identity of one object: enough to find, compare and delete it."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObjectRef:
        return cls(str(data["apiVersion"]), str(data["kind"]), data.get("namespace"), str(data["name"]))


def ref_of(manifest: Any, source: str) -> ObjectRef:
    """The identity of a manifest; a one-line error naming `source` when it has none."""
    if not isinstance(manifest, dict):
        raise ManifestError(f"{source}: a manifest must be a mapping (got {type(manifest).__name__})")
    meta = manifest.get("metadata")
    missing = [
        key
        for key, value in (
            ("apiVersion", manifest.get("apiVersion")),
            ("kind", manifest.get("kind")),
            ("metadata.name", meta.get("name") if isinstance(meta, dict) else None),
        )
        if not isinstance(value, str) or not value
    ]
    if missing:
        raise ManifestError(f"{source}: manifest lacks {', '.join(missing)}; every object needs all three")
    assert isinstance(meta, dict)
    namespace = meta.get("namespace")
    return ObjectRef(
        manifest["apiVersion"], manifest["kind"], str(namespace) if namespace else None, meta["name"]
    )


@dataclass(frozen=True)
class ResourceType:
    plural: str
    namespaced: bool


#: The kinds stagegraph renders, so applying them needs no discovery round trip.
KNOWN_TYPES: dict[tuple[str, str], ResourceType] = {
    ("v1", "Namespace"): ResourceType("namespaces", False),
    ("v1", "ServiceAccount"): ResourceType("serviceaccounts", True),
    ("v1", "ConfigMap"): ResourceType("configmaps", True),
    ("v1", "Service"): ResourceType("services", True),
    ("apps/v1", "Deployment"): ResourceType("deployments", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ResourceType("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ResourceType("clusterrolebindings", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ResourceType("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ResourceType("rolebindings", True),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ResourceType("customresourcedefinitions", False),
    ("comcast.github.io/v1", "KuberhealthyCheck"): ResourceType("khchecks", True),
    ("comcast.github.io/v1", "KuberhealthyState"): ResourceType("khstates", True),
    ("comcast.github.io/v1", "KuberhealthyJob"): ResourceType("khjobs", True),
}


def group_path(api_version: str) -> str:
    """`/api/v1` for the core group, `/apis/<group>/<version>` for every other."""
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


class Resolver:
    """Finds where a kind lives: the table above, else API discovery (cached per run)."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._discovered: dict[str, dict[str, ResourceType]] = {}

    def resolve(self, ref: ObjectRef, source: str) -> ResourceType:
        known = KNOWN_TYPES.get((ref.api_version, ref.kind))
        if known is not None:
            return known
        kinds = self._discovered.get(ref.api_version)
        if kinds is None:
            try:
                listing = self._client.request("GET", group_path(ref.api_version))
            except KubeApiError as exc:
                if exc.status != 404:
                    raise
                listing = {}
            kinds = {
                str(r["kind"]): ResourceType(str(r["name"]), bool(r.get("namespaced")))
                for r in listing.get("resources", [])
                if isinstance(r, dict) and "/" not in str(r.get("name", "/"))  # skip subresources
            }
            if kinds:  # a group not served yet may be by the next object (its CRD just applied)
                self._discovered[ref.api_version] = kinds
        found = kinds.get(ref.kind)
        if found is None:
            raise ManifestError(
                f"{source}: the cluster serves no kind {ref.kind} in apiVersion {ref.api_version}; "
                "install its CRD first or fix apiVersion/kind"
            )
        return found

    def path(self, ref: ObjectRef, source: str) -> str:
        rtype = self.resolve(ref, source)
        base = group_path(ref.api_version)
        if not rtype.namespaced:
            return f"{base}/{rtype.plural}/{ref.name}"
        if not ref.namespace:
            raise ManifestError(
                f"{source}: {ref.describe()} is namespaced but has no metadata.namespace; set it in the manifest"
            )
        return f"{base}/namespaces/{ref.namespace}/{rtype.plural}/{ref.name}"


Action = Literal["created", "configured", "unchanged"]


@dataclass(frozen=True)
class Applied:
    ref: ObjectRef
    action: Action
    resource_version: str


def _refused(source: str, ref: ObjectRef, what: str, exc: KubeApiError) -> ManifestError:
    hint = "; is its namespace or CRD installed?" if exc.status == 404 else ""
    detail = f"{exc.reason}: {exc.api_message}" if exc.api_message else exc.reason
    where = f"{source}: " if source else ""
    return ManifestError(f"{where}{what} {ref.describe()} failed: {exc.status} {detail}{hint}")


def get_object(client: KubeClient, resolver: Resolver, ref: ObjectRef, source: str = "") -> Manifest | None:
    """The live object, or None when it does not exist."""
    try:
        return client.request("GET", resolver.path(ref, source or ref.describe()))
    except KubeApiError as exc:
        if exc.status == 404:
            return None
        raise


def server_side_apply(
    client: KubeClient, resolver: Resolver, manifest: Manifest, source: str, *, dry_run: bool = False
) -> Manifest:
    """PATCH the manifest as an apply patch; the object as the server now has it (or would)."""
    ref = ref_of(manifest, source)
    query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
    if dry_run:
        query.append(("dryRun", "All"))
    try:
        return client.request(
            "PATCH", resolver.path(ref, source), query=query, body=manifest, content_type=APPLY_PATCH
        )
    except KubeApiError as exc:
        raise _refused(source, ref, "server-side apply of", exc) from None


def apply_manifest(client: KubeClient, resolver: Resolver, manifest: Manifest, source: str) -> Applied:
    """Apply one manifest and say whether it created, changed or left the object alone."""
    ref = ref_of(manifest, source)
    before = get_object(client, resolver, ref, source)
    after = server_side_apply(client, resolver, manifest, source)
    version = str(after.get("metadata", {}).get("resourceVersion", ""))
    if before is None:
        return Applied(ref, "created", version)
    same = str(before.get("metadata", {}).get("resourceVersion", "")) == version
    return Applied(ref, "unchanged" if same else "configured", version)


def would_change(client: KubeClient, resolver: Resolver, manifest: Manifest, source: str) -> bool:
    """Whether applying the manifest would create or change anything (a server-side dry run)."""
    ref = ref_of(manifest, source)
    before = get_object(client, resolver, ref, source)
    if before is None:
        return True
    after = server_side_apply(client, resolver, manifest, source, dry_run=True)
    return _comparable(before) != _comparable(after)


def _comparable(obj: Manifest) -> Manifest:
    """The object without bookkeeping a no-op dry run may still touch."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in ("managedFields", "resourceVersion")}
    return {**obj, "metadata": meta}


def managed_by_us(obj: Manifest) -> bool:
    """Whether stagegraph's field manager ever applied to this live object."""
    fields = obj.get("metadata", {}).get("managedFields") or []
    return any(isinstance(f, dict) and f.get("manager") == FIELD_MANAGER for f in fields)


def delete_object(client: KubeClient, resolver: Resolver, ref: ObjectRef) -> bool:
    """Delete one object (dependents by background garbage collection); False if already gone.

    The inventory naming `ref` lives in the deployment folder, so it is untrusted: an object
    that stagegraph never applied (no `stagegraph` field manager) is refused, never deleted.
    """
    source = ref.describe()
    try:
        path = resolver.path(ref, source)
    except ManifestError:
        # Its kind is no longer served (its CRD went first): the object went with it.
        return False
    live = get_object(client, resolver, ref, source)
    if live is None:
        return False
    if not managed_by_us(live):
        raise ManifestError(
            f"{source}: listed for deletion, but stagegraph never applied it (no {FIELD_MANAGER!r} "
            "field manager); left alone: remove it from the stage's .stagegraph-applied.json"
        )
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    try:
        client.request("DELETE", path, body=options)
    except KubeApiError as exc:
        if exc.status == 404:
            return False
        raise _refused("", ref, "deleting", exc) from None
    return True
