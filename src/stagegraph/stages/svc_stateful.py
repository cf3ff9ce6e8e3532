"""A one-replica database as our own Kubernetes objects: StatefulSet, headless Service, Secret.

Keycloak's PostgreSQL (05) and conda-store's PostgreSQL and Redis (07) run the Docker
Library's official images from the lockfile, with objects rendered here rather than
Bitnami charts. Bitnami's pinned charts vanished from its index twice (the retention RFD
in Nebari's design repository), and since August 2025 its free images live in the
unmaintained `bitnamilegacy` repository, which is where Nebari 2025.10.1 had to point its
PostgreSQL, Redis and MinIO releases. A StatefulSet, a Service and a Secret are a small,
stable surface of the Kubernetes API that no chart repository can take away.

Each database gets: a generated password (`random_password`, so the value exists only in
Terraform state) in a Secret that the pods read through `secretKeyRef`; a headless Service
whose DNS name resolves to the pod; a StatefulSet whose volume comes from a
volumeClaimTemplate (the cluster's default storage class: Nebari's config has no storage
class field for these volumes), running as the images' own non-root user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stagegraph.stages.svc_kube import (
    NAMESPACE,
    app_labels,
    manifest,
    metadata,
    opaque_secret,
    random_secret,
    secret_env,
    tf_key,
)
from stagegraph.tfjson import Ref, TerraformModule

#: The `postgres` and `redis` users of the official Debian-based images.
IMAGE_UID = 999
PASSWORD_KEY = "password"  # noqa: S105 - the key inside the Secret, not a value


@dataclass(frozen=True)
class Database:
    """Where a rendered database answers, and the Secret holding its password."""

    name: str
    port: int
    secret: str
    #: The Terraform resources a consumer waits for (the Secret, the StatefulSet).
    ready: tuple[Ref, ...] = field(default=())

    @property
    def host(self) -> str:
        """The headless Service's in-cluster DNS name (resolves to the pod)."""
        return f"{self.name}.{NAMESPACE}.svc"

    def password_env(self, env: str) -> dict[str, Any]:
        return secret_env(env, self.secret, PASSWORD_KEY)


def password_secret(m: TerraformModule, name: str) -> Ref:
    """The Secret `<name>` with a generated `password`: only a reference in the render."""
    return opaque_secret(m, name, {PASSWORD_KEY: random_secret(m, f"{tf_key(name)}_password")})


def headless_service(name: str, port_name: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, labels=app_labels(name)),
        "spec": {
            "clusterIP": "None",
            "selector": app_labels(name),
            "ports": [{"name": port_name, "port": port, "targetPort": port_name}],
        },
    }


def stateful_set(
    name: str, container: dict[str, Any], node_selector: str, *, mount_path: str, size: str
) -> dict[str, Any]:
    """One replica of `container` with a `data` volume of `size` at `mount_path`."""
    hardened = {
        **container,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": mount_path}],
    }
    pod = {
        "nodeSelector": node_selector,
        # The images' own user; fsGroup makes the new volume writable for it.
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": IMAGE_UID,
            "runAsGroup": IMAGE_UID,
            "fsGroup": IMAGE_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [hardened],
    }
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(name, labels=app_labels(name)),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": app_labels(name)},
            "template": {"metadata": {"labels": app_labels(name)}, "spec": pod},
            "volumeClaimTemplates": [claim],
        },
    }


def render_database(
    m: TerraformModule,
    name: str,
    container: dict[str, Any],
    node_selector: str,
    *,
    port: tuple[str, int],
    mount_path: str,
    size: str,
) -> Database:
    """Secret, headless Service and StatefulSet of one database; the container reads the Secret."""
    secret = password_secret(m, name)
    service = manifest(m, f"{tf_key(name)}_service", headless_service(name, *port))
    workload = manifest(
        m,
        tf_key(name),
        stateful_set(name, container, node_selector, mount_path=mount_path, size=size),
        after=(secret, service),
    )
    return Database(name=name, port=port[1], secret=name, ready=(secret, workload))
