"""A FAKE Kubernetes API server for tests: a stand-in, not Kubernetes.

No Kubernetes API server can run on these machines (no kind, k3s, kwok or kube-apiserver
in any reachable registry), so the code that talks to clusters is tested against this small
HTTP server on 127.0.0.1. It speaks the part of the API stagegraph uses, as the real server
does, and is reached through a real kubeconfig file by the real `kubernetes` client:

- discovery: /version, /api, /api/v1, /apis, /apis/<group>/<version>;
- namespaces and any namespaced or cluster-scoped resource, in an in-memory store; a
  CustomResourceDefinition makes its kind servable, and deleting it deletes its objects;
- server-side apply (PATCH application/apply-patch+yaml, fieldManager required, force,
  dryRun=All), with fields owned per manager: a field a manager stops applying is removed,
  and a field another manager set is a 409 conflict unless forced;
- resourceVersion that moves only on a real change, so re-applying identical content is a
  no-op a test can see; a stale resourceVersion in an apply is a 409 Conflict;
- GET, LIST, POST (409 AlreadyExists), DELETE, and Status bodies for 401/404/409/400/415
  shaped like the real ones (`{"kind": "Status", "status": "Failure", "reason": ...}`);
- bearer-token authentication, from the kubeconfig;
- PUT (update) as client-go's `Update` sends it: the whole object, refused with 409
  Conflict when its `metadata.resourceVersion` is stale and 404 when the object is gone
  (Secrets, ConfigMaps and Leases are not created by an update); DELETE with
  `preconditions.resourceVersion` in its DeleteOptions body (409 when it moved);
- Secrets as the real server keeps them: `data` values must be base64 (400 otherwise),
  `stringData` is folded into `data`; Leases (coordination.k8s.io/v1) with the fields
  Terraform's kubernetes backend and stagegraph's lock set; a `default` namespace exists
  from the start, as in every cluster. This is what Terraform's kubernetes backend
  (client-go: GET/POST/PUT of its state Secret and lock Lease, LIST of Secrets by label)
  and stagegraph's shared state need; `unknown` lists every request the fake could not
  route, so a test can assert that real Terraform asked for nothing it does not serve.

- 422 Invalid (a Status with `details.causes`, as the real server answers) for names that
  are not DNS-1123 (labels for Namespace and Service, subdomains otherwise), label values
  that are not strings of the allowed form, and a Deployment without `spec.selector` or
  whose selector does not match its template's labels;
- field ownership kept across appliers: each field manager's applied configuration is kept,
  so fields one manager set stay when another applies (and conflict unless forced);
- a CustomResourceDefinition is Established only after `establish_after` seconds: until
  then its condition says False and its kind is not served (404), as while the real
  apiextensions controller is still working;
- a deleted Namespace terminates: phase Terminating with a deletionTimestamp, new content
  in it refused with 403 Forbidden, its objects deleted, and the Namespace itself gone
  after `terminate_after` seconds.

What it still does not do: admission webhooks, validation against the OpenAPI schemas
(types, unknown fields; `doit check` covers those offline), watches, garbage collection
of dependents by ownerReferences, finalizers, strategic-merge or JSON patches, pruning of
unknown fields of custom resources, quotas, RBAC (every valid token may do anything).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How the real server names the resource in messages: `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


BUILTIN_KINDS = (
    Kind("", "v1", "namespaces", "Namespace", False),
    Kind("", "v1", "services", "Service", True),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True),
    Kind("", "v1", "configmaps", "ConfigMap", True),
    Kind("", "v1", "secrets", "Secret", True),
    Kind("", "v1", "pods", "Pod", True),
    Kind("apps", "v1", "deployments", "Deployment", True),
    Kind("apps", "v1", "daemonsets", "DaemonSet", True),
    Kind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True),
    Kind("batch", "v1", "jobs", "Job", True),
    Kind("batch", "v1", "cronjobs", "CronJob", True),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    Kind("coordination.k8s.io", "v1", "leases", "Lease", True),
)

Key = tuple[str, str, str | None, str]  # (apiVersion, plural, namespace, name)


class ApiStatus(Exception):
    """An error answer: a Status body with the real server's shape."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details or {},
            "code": code,
        }


def _not_found(kind: Kind, name: str) -> ApiStatus:
    return ApiStatus(
        404,
        "NotFound",
        f'{kind.qualified} "{name}" not found',
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Field path -> value; lists are atomic, as for most fields in the real server."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, child in value.items():
            out.update(_leaves(child, f"{prefix}.{key}"))
        return out
    return {prefix: value}


def _drop(obj: dict[str, Any], path: str) -> None:
    """Remove the leaf at `.a.b.c`, and the mappings it leaves empty."""
    keys = path.split(".")[1:]
    trail = [obj]
    for key in keys[:-1]:
        trail.append(trail[-1][key])
    trail[-1].pop(keys[-1], None)
    for parent, key in zip(reversed(trail[:-1]), reversed(keys[:-1]), strict=True):
        if parent[key] == {}:
            del parent[key]


_SYSTEM_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


class FakeKube:
    """The fake API server. Use as a context manager; `url` and `write_kubeconfig` reach it."""

    def __init__(
        self,
        git_version: str = "v1.31.4",
        token: str = "fake-token-for-tests",
        establish_after: float = 0.3,
        terminate_after: float = 0.3,
        tls: bool = False,
    ) -> None:
        self.git_version = git_version
        self.token = token
        self.establish_after = establish_after
        self.terminate_after = terminate_after
        #: CRD name -> monotonic time it becomes Established; Namespace -> time it is gone.
        self._establishing: dict[str, float] = {}
        self._terminating: dict[str, float] = {}
        self.kinds: list[Kind] = list(BUILTIN_KINDS)
        self.objects: dict[Key, dict[str, Any]] = {}
        #: per object, per field manager: the last configuration it applied (insertion order).
        self.applied: dict[Key, dict[str, dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        #: Requests answered "the server could not find the requested resource" (no route).
        self.unknown: list[tuple[str, str]] = []
        self._rv = 1000
        self._lock = threading.RLock()
        namespace = BUILTIN_KINDS[0]
        self.objects[self._key(namespace, None, "default")] = self._fresh(namespace, None, "default", {})
        self.objects[self._key(namespace, None, "default")]["status"] = {"phase": "Active"}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        #: PEM of the self-signed certificate the server presents (tls=True), else None.
        self.ca_pem: bytes | None = None
        if tls:
            # client-go (Terraform's kubernetes backend) sends a kubeconfig's credentials
            # only to an https server, as kubectl does: serve TLS for it.
            import ssl

            cert, key = _self_signed("127.0.0.1")
            self.ca_pem = cert
            with tempfile.TemporaryDirectory() as scratch:
                (Path(scratch) / "cert.pem").write_bytes(cert)
                (Path(scratch) / "key.pem").write_bytes(key)
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(Path(scratch) / "cert.pem", Path(scratch) / "key.pem")
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> FakeKube:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self.ca_pem else 'http'}://{host!s}:{port}"

    def write_kubeconfig(self, path: Path, context: str = "fake", token: str | None = None) -> Path:
        """A real kubeconfig file whose context points at this server."""
        cluster: dict[str, str] = {"server": self.url}
        if self.ca_pem is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake-cluster", "cluster": cluster}],
            "users": [{"name": "fake-user", "user": {"token": token or self.token}}],
            "contexts": [{"name": context, "context": {"cluster": "fake-cluster", "user": "fake-user"}}],
            "current-context": context,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # --- what controllers do after a moment ---------------------------------------------------

    def tick(self) -> None:
        """Finish what is due: establish CRDs, remove terminated namespaces."""
        now = time.monotonic()
        with self._lock:
            for name, due in list(self._establishing.items()):
                if due <= now:
                    del self._establishing[name]
                    crd = self.objects.get(
                        ("apiextensions.k8s.io/v1", "customresourcedefinitions", None, name)
                    )
                    if crd is not None:
                        self._establish(crd)
            for name, due in list(self._terminating.items()):
                if due <= now:
                    del self._terminating[name]
                    self.objects.pop(("v1", "namespaces", None, name), None)
                    self.applied.pop(("v1", "namespaces", None, name), None)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every pending CRD is Established and every namespace is gone (tests)."""
        deadline = time.monotonic() + timeout
        while (self._establishing or self._terminating) and time.monotonic() < deadline:
            time.sleep(0.05)
            self.tick()

    # --- test helpers -----------------------------------------------------------------------

    def kind_of(self, api_version: str, plural: str) -> Kind | None:
        return next((k for k in self.kinds if k.api_version == api_version and k.plural == plural), None)

    def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self.objects.get((api_version, plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def names(self, api_version: str, plural: str, namespace: str | None = None) -> list[str]:
        with self._lock:
            return sorted(
                k[3] for k in self.objects if k[0] == api_version and k[1] == plural and k[2] == namespace
            )

    def set_status(
        self, api_version: str, plural: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> None:
        """What a controller does: write the status (a real change, so resourceVersion moves)."""
        with self._lock:
            obj = self.objects[(api_version, plural, namespace, name)]
            obj["status"] = copy.deepcopy(status)
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def add_namespace(self, name: str) -> None:
        self.apply_as("test-setup", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def apply_as(self, manager: str, manifest: dict[str, Any], force: bool = True) -> dict[str, Any]:
        """Server-side apply by another field manager (kubectl, a controller, a person)."""
        kind = next(
            k for k in self.kinds if k.api_version == manifest["apiVersion"] and k.kind == manifest["kind"]
        )
        meta = manifest["metadata"]
        _, obj = self._apply(kind, meta.get("namespace"), meta["name"], manifest, manager, force, False)
        return obj

    # --- the API --------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _kind_for(self, api_version: str, plural: str) -> Kind:
        kind = self.kind_of(api_version, plural)
        if kind is None:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
        return kind

    def _check_namespace(self, kind: Kind, namespace: str | None, creating: bool = False) -> None:
        if (
            kind.namespaced
            and namespace is not None
            and ("v1", "namespaces", None, namespace) not in self.objects
        ):
            raise ApiStatus(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        if creating and kind.namespaced and namespace in self._terminating:
            raise ApiStatus(
                403,
                "Forbidden",
                f'{kind.qualified} "?" is forbidden: unable to create new content in namespace {namespace} '
                "because it is being terminated",
                {
                    "kind": kind.plural,
                    "causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}],
                },
            )

    def _key(self, kind: Kind, namespace: str | None, name: str) -> Key:
        return (kind.api_version, kind.plural, namespace if kind.namespaced else None, name)

    def _get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.objects.get(self._key(kind, namespace, name))
        if obj is None:
            raise _not_found(kind, name)
        return obj

    def _list(self, kind: Kind, namespace: str | None, selector: str = "") -> dict[str, Any]:
        # Equality-based label selectors (`a=b,c=d`), the form stagegraph sends.
        wanted = dict(term.split("=", 1) for term in selector.split(",") if "=" in term)
        items = [
            copy.deepcopy(obj)
            for key, obj in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
            if key[0] == kind.api_version
            and key[1] == kind.plural
            and (namespace is None or key[2] == namespace)
            and all(obj.get("metadata", {}).get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _create(self, kind: Kind, namespace: str | None, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("metadata", {}).get("name", ""))
        if not name:
            raise ApiStatus(400, "BadRequest", "name or generateName is required")
        _validate(kind, name, body)
        self._check_namespace(kind, namespace, creating=True)
        key = self._key(kind, namespace, name)
        if key in self.objects:
            raise ApiStatus(
                409,
                "AlreadyExists",
                f'{kind.qualified} "{name}" already exists',
                {"name": name, "group": kind.group, "kind": kind.plural},
            )
        obj = self._fresh(kind, namespace, name, _secret_data(kind, name, body))
        self._store(kind, key, obj)
        return copy.deepcopy(obj)

    def _update(self, kind: Kind, namespace: str | None, name: str, body: Any) -> dict[str, Any]:
        """PUT: replace the whole object, only at the resourceVersion it names (if any)."""
        if not isinstance(body, dict):
            raise ApiStatus(400, "BadRequest", "the body of an update must be an object")
        meta = body.get("metadata") or {}
        if meta.get("name") != name:
            raise ApiStatus(400, "BadRequest", "the name of the object does not match the name on the URL")
        if kind.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise ApiStatus(
                400, "BadRequest", "the namespace of the object does not match the namespace on the URL"
            )
        _validate(kind, name, body)
        key = self._key(kind, namespace, name)
        current = self._get(kind, namespace, name)
        wanted = meta.get("resourceVersion")
        if wanted not in (None, "") and wanted != current["metadata"]["resourceVersion"]:
            raise ApiStatus(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                {"name": name, "group": kind.group, "kind": kind.plural},
            )
        new = _secret_data(kind, name, copy.deepcopy(body))
        new["apiVersion"], new["kind"] = kind.api_version, kind.kind
        new_meta = new.setdefault("metadata", {})
        new_meta.pop("managedFields", None)
        new_meta.update(name=name, **({"namespace": namespace} if kind.namespaced else {}))
        new_meta.update({k: current["metadata"][k] for k in _SYSTEM_META if k in current["metadata"]})
        if "status" in current:
            new["status"] = copy.deepcopy(current["status"])
        if _without_bookkeeping(new) == _without_bookkeeping(current):
            return copy.deepcopy(current)  # a no-op: nothing written, resourceVersion kept
        if _spec_of(new) != _spec_of(current):
            new_meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        new_meta["resourceVersion"] = self._next_rv()
        self._store(kind, key, new)
        return copy.deepcopy(new)

    def _fresh(self, kind: Kind, namespace: str | None, name: str, content: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(content)
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        meta = obj.setdefault("metadata", {})
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = namespace
        meta.update(
            uid=str(uuid.uuid4()),
            creationTimestamp="2025-01-01T00:00:00Z",
            resourceVersion=self._next_rv(),
            generation=1,
        )
        return obj

    def _store(self, kind: Kind, key: Key, obj: dict[str, Any]) -> None:
        if kind.kind == "Namespace":
            obj.setdefault("status", {"phase": "Active"})
        if kind.kind == "CustomResourceDefinition":
            self._serve_crd(obj)
        self.objects[key] = obj

    def _serve_crd(self, crd: dict[str, Any]) -> None:
        """A new or changed CRD: not Established yet; the controller gets to it after a moment."""
        name = crd["metadata"]["name"]
        served = any(
            c.get("type") == "Established" and c.get("status") == "True"
            for c in crd.get("status", {}).get("conditions", [])
        )
        if served:
            self._establish(crd)  # already served: a change of its versions is served at once
            return
        crd["status"] = {
            "acceptedNames": {},
            "conditions": [{"type": "Established", "status": "False", "reason": "Installing"}],
        }
        self._establishing[name] = time.monotonic() + self.establish_after
        if self.establish_after <= 0:
            self.tick()

    def _establish(self, crd: dict[str, Any]) -> None:
        """What the apiextensions controller does: serve the kind, mark the CRD Established."""
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        for version in spec.get("versions", []):
            if not version.get("served"):
                continue
            kind = Kind(
                spec["group"], version["name"], names["plural"], names["kind"], spec["scope"] == "Namespaced"
            )
            if self.kind_of(kind.api_version, kind.plural) is None:
                self.kinds.append(kind)
        crd["status"] = {
            "acceptedNames": {"plural": names.get("plural"), "kind": names.get("kind")},
            "conditions": [{"type": "Established", "status": "True"}],
        }

    def _apply(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        body: Any,
        manager: str,
        force: bool,
        dry_run: bool,
    ) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            raise ApiStatus(400, "BadRequest", "the body of an apply must be an object")
        if body.get("apiVersion") != kind.api_version or body.get("kind") != kind.kind:
            raise ApiStatus(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) and kind ({body.get('kind')}) "
                f"do not match the request ({kind.api_version}, {kind.kind})",
            )
        meta = body.get("metadata") or {}
        if meta.get("name") != name:
            raise ApiStatus(400, "BadRequest", "the name of the object does not match the name on the URL")
        if kind.namespaced and meta.get("namespace") not in (None, namespace):
            raise ApiStatus(
                400, "BadRequest", "the namespace of the object does not match the namespace on the URL"
            )
        _validate(kind, name, body)
        key = self._key(kind, namespace, name)
        current = self.objects.get(key)
        self._check_namespace(kind, namespace, creating=current is None)
        if current is not None and meta.get("resourceVersion") not in (
            None,
            current["metadata"]["resourceVersion"],
        ):
            raise ApiStatus(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
            )
        config = copy.deepcopy(body)
        config.setdefault("metadata", {}).pop("resourceVersion", None)
        managers = dict(self.applied.get(key, {}))
        if not force:
            mine = _leaves(config)
            clashes = [
                f'conflict with "{other}": {path}'
                for other, theirs in managers.items()
                if other != manager
                for path, value in _leaves(theirs).items()
                if path in mine and mine[path] != value
            ]
            if clashes:
                raise ApiStatus(
                    409,
                    "Conflict",
                    f"Apply failed with {len(clashes)} conflict(s): {'; '.join(sorted(clashes))}",
                )
        else:
            # Forcing takes the conflicting fields over: the other managers stop owning them.
            mine = _leaves(config)
            for other in [m for m in managers if m != manager]:
                theirs = copy.deepcopy(managers[other])
                for path, value in _leaves(managers[other]).items():
                    if path in mine and mine[path] != value:
                        _drop(theirs, path)
                managers[other] = theirs
        managers[manager] = config
        content: dict[str, Any] = {}
        for applied in managers.values():
            content = _merge(content, applied)
        if current is None:
            obj = self._fresh(kind, namespace, name, content)
            obj["metadata"]["managedFields"] = [{"manager": m, "operation": "Apply"} for m in managers]
            if dry_run:
                obj["metadata"].pop("resourceVersion")
                return 201, obj
            self.applied[key] = managers
            self._store(kind, key, obj)
            return 201, copy.deepcopy(obj)
        system = {k: current["metadata"][k] for k in _SYSTEM_META if k in current["metadata"]}
        new = copy.deepcopy(content)
        new["apiVersion"], new["kind"] = kind.api_version, kind.kind
        new.setdefault("metadata", {}).update(
            name=name, **({"namespace": namespace} if kind.namespaced else {})
        )
        new["metadata"].update(system)
        new["metadata"]["managedFields"] = [{"manager": m, "operation": "Apply"} for m in managers]
        if "status" in current:
            new["status"] = copy.deepcopy(current["status"])
        if _without_bookkeeping(new) == _without_bookkeeping(current):
            if not dry_run:
                self.applied[key] = managers
            return 200, copy.deepcopy(current)  # a no-op: nothing written, resourceVersion kept
        if _spec_of(new) != _spec_of(current):
            new["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        if dry_run:
            return 200, new
        new["metadata"]["resourceVersion"] = self._next_rv()
        self.applied[key] = managers
        self._store(kind, key, new)
        return 200, copy.deepcopy(new)

    def _delete(self, kind: Kind, namespace: str | None, name: str, options: Any = None) -> dict[str, Any]:
        key = self._key(kind, namespace, name)
        obj = self._get(kind, namespace, name)
        wanted = ((options or {}).get("preconditions") or {}) if isinstance(options, dict) else {}
        for field, have in (
            ("resourceVersion", obj["metadata"]["resourceVersion"]),
            ("uid", obj["metadata"]["uid"]),
        ):
            if wanted.get(field) not in (None, have):
                title = field[0].upper() + field[1:]
                raise ApiStatus(
                    409,
                    "Conflict",
                    f"Precondition failed: {title} in precondition: {wanted[field]}, "
                    f"{title} in object meta: {have}",
                    {"name": name, "group": kind.group, "kind": kind.plural},
                )
        if kind.kind == "Namespace":
            # The namespace controller: Terminating first, its content deleted, then it goes.
            for other in [k for k in self.objects if k[2] == name]:
                del self.objects[other]
                self.applied.pop(other, None)
            if name not in self._terminating:
                obj["status"] = {"phase": "Terminating"}
                obj["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:01Z"
                obj["metadata"]["resourceVersion"] = self._next_rv()
                self._terminating[name] = time.monotonic() + self.terminate_after
                if self.terminate_after <= 0:
                    self.tick()
            return copy.deepcopy(obj)
        del self.objects[key]
        self.applied.pop(key, None)
        self._establishing.pop(name, None) if kind.kind == "CustomResourceDefinition" else None
        if kind.kind == "CustomResourceDefinition":
            spec = obj.get("spec", {})
            served = {
                (f"{spec.get('group')}/{v['name']}", spec.get("names", {}).get("plural"))
                for v in spec.get("versions", [])
            }
            self.kinds = [k for k in self.kinds if (k.api_version, k.plural) not in served]
            for other in [k for k in self.objects if (k[0], k[1]) in served]:
                del self.objects[other]
                self.applied.pop(other, None)
        return copy.deepcopy(obj)

    # --- routing ----------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        with self._lock:
            self.tick()
            self.requests.append((method, parts.path, query))
            if headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiStatus(401, "Unauthorized", "Unauthorized")
            try:
                return self._route(method, parts.path, query, headers, body)
            except ApiStatus as exc:
                if exc.code == 405 or "could not find the requested resource" in str(exc):
                    self.unknown.append((method, parts.path))
                raise

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any]]:
        segs = [s for s in path.split("/") if s]
        if segs == ["version"]:
            major, minor = self.git_version.lstrip("v").split(".")[:2]
            return 200, {
                "major": major,
                "minor": minor,
                "gitVersion": self.git_version,
                "platform": "linux/amd64",
            }
        if segs == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if segs == ["apis"]:
            return 200, self._groups()
        if segs[:2] == ["api", "v1"]:
            api_version, rest = "v1", segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis":
            api_version, rest = f"{segs[1]}/{segs[2]}", segs[3:]
        else:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return 200, self._resources(api_version)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 2:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
        kind = self._kind_for(api_version, rest[0])
        if kind.namespaced != (namespace is not None) and not (kind.namespaced and len(rest) == 1):
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) == 2 else None
        if name is None:
            if method == "GET":
                return 200, self._list(kind, namespace, (query.get("labelSelector") or [""])[0])
            if method == "POST":
                return 201, self._create(kind, namespace, _json_or_yaml(body))
            raise ApiStatus(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        if method == "GET":
            return 200, copy.deepcopy(self._get(kind, namespace, name))
        if method == "DELETE":
            return 200, self._delete(kind, namespace, name, _json_or_yaml(body) if body else None)
        if method == "PUT":
            return 200, self._update(kind, namespace, name, _json_or_yaml(body))
        if method == "PATCH":
            content_type = str(headers.get("Content-Type", "")).split(";")[0].strip()
            if content_type != APPLY_PATCH:
                raise ApiStatus(415, "UnsupportedMediaType", f"the fake serves only {APPLY_PATCH} patches")
            manager = (query.get("fieldManager") or [""])[0]
            if not manager:
                raise ApiStatus(400, "BadRequest", "PATCH: fieldManager is required for apply requests")
            force = (query.get("force") or ["false"])[0] == "true"
            dry_run = (query.get("dryRun") or [""])[0] == "All"
            return self._apply(kind, namespace, name, _json_or_yaml(body), manager, force, dry_run)
        raise ApiStatus(405, "MethodNotAllowed", f"{method} is not supported")

    def _groups(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        for k in self.kinds:
            if k.group:
                groups.setdefault(k.group, [])
                if k.version not in groups[k.group]:
                    groups[k.group].append(k.version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in sorted(groups.items())
            ],
        }

    def _resources(self, api_version: str) -> dict[str, Any]:
        kinds = [k for k in self.kinds if k.api_version == api_version]
        if not kinds:
            raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": api_version,
            "resources": [
                {
                    "name": k.plural,
                    "singularName": "",
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": verbs,
                }
                for k in kinds
            ]
            + [
                # Subresources are listed too; clients must skip them.
                {
                    "name": f"{k.plural}/status",
                    "singularName": "",
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": ["get", "patch"],
                }
                for k in kinds
            ],
        }


_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _validate(kind: Kind, name: str, body: dict[str, Any]) -> None:
    """The real server's 422 Invalid for the object rules this fake knows."""
    causes: list[tuple[str, str]] = []
    label_name = kind.kind in ("Namespace", "Service")
    rule, limit = (_LABEL, 63) if label_name else (_SUBDOMAIN, 253)
    if len(name) > limit or not rule.match(name):
        what = "a lowercase RFC 1123 label" if label_name else "a lowercase RFC 1123 subdomain"
        chars = "" if label_name else " or '.'"
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": {what} must consist of lower case alphanumeric characters, '
                f"'-'{chars}, and must start and end with an alphanumeric character",
            )
        )
    labels = (body.get("metadata") or {}).get("labels") or {}
    for key, value in labels.items() if isinstance(labels, dict) else []:
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                (
                    f"metadata.labels.{key}",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist of '
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
    if kind.kind == "Deployment":
        spec = body.get("spec") or {}
        selector = (spec.get("selector") or {}).get("matchLabels")
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector:
            causes.append(("spec.selector", "Required value"))
        elif any(template_labels.get(k) != v for k, v in selector.items()):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    "Invalid value: `selector` does not match template `labels`",
                )
            )
    if causes:
        detail = ", ".join(f"{field}: {message}" for field, message in causes)
        raise ApiStatus(
            422,
            "Invalid",
            f'{kind.kind} "{name}" is invalid: {detail}',
            {
                "name": name,
                "group": kind.group,
                "kind": kind.kind,
                "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
            },
        )


def _self_signed(ip: str) -> tuple[bytes, bytes]:
    """A certificate (its own CA) for `ip` and its key, both PEM."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubefake")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _secret_data(kind: Kind, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """A Secret as the real server stores it: `stringData` folded into base64 `data`."""
    if kind.kind != "Secret":
        return body
    body = copy.deepcopy(body)
    data = dict(body.get("data") or {})
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise ApiStatus(
                400,
                "BadRequest",
                f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at key {key!r}',
            ) from None
    for key, value in (body.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    if data:
        body["data"] = data
    return body


def _without_bookkeeping(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _json_or_yaml(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError:
            raise ApiStatus(400, "BadRequest", "the body is neither JSON nor YAML") from None


def send_json(handler: BaseHTTPRequestHandler, code: int, payload: Any) -> None:
    """Answer `handler`'s request with `payload` as JSON and status `code`."""
    data = json.dumps(payload).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _handler(fake: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                code, payload = fake.handle(self.command, self.path, self.headers, body)
            except ApiStatus as exc:
                code, payload = exc.code, exc.body
            send_json(self, code, payload)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    return Handler


def running_fake(**kwargs: Any) -> Iterator[FakeKube]:
    """For pytest fixtures: `yield from running_fake()`."""
    with FakeKube(**kwargs) as fake:
        yield fake
