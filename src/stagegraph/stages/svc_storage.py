"""Shared filesystems: the home/shared volume and the conda-store environments volume.

Both are ReadWriteMany claims that every user pod mounts. On local and existing clusters
(storage.type nfs, the default there) each is served, as Nebari does, by an in-cluster NFS
server: a ReadWriteOnce claim of the configured size, an NFS server Deployment exporting
it, and a PersistentVolume of type nfs pointing at the server's ClusterIP (kubelets mount
NFS from the node, where cluster DNS names do not resolve), bound to the RWX claim.
"""

from __future__ import annotations

from dataclasses import dataclass

from stagegraph.errors import RenderError
from stagegraph.stage import RenderContext
from stagegraph.stages.svc_images import resolve_image
from stagegraph.stages.svc_kube import NAMESPACE, deployment, manifest, tf_key
from stagegraph.tfjson import Ref, TerraformModule, depends, literal

NFS_PORTS = {"nfs": 2049, "mountd": 20048, "rpcbind": 111}


@dataclass(frozen=True)
class SharedVolumes:
    """The RWX claims users mount, and the resources a consumer must wait for."""

    home: str
    conda_store: str
    ready: tuple[Ref, ...]


def shared_storage(ctx: RenderContext, m: TerraformModule, node_selector: str) -> SharedVolumes:
    kind = ctx.config.storage.type or "nfs"
    if kind not in ("nfs", "efs"):
        raise RenderError(
            f"nebari-config.yaml: storage.type: {kind} is not rendered for provider {ctx.provider} yet "
            "(nfs is, and efs on aws); set storage.type: nfs or leave it null"
        )
    home_size = literal(ctx.config.storage.shared_filesystem)
    if kind == "efs":
        home = _share(m, "jupyterhub", home_size, "${var.nfs_endpoint}", "efs")
    else:
        home = _nfs_volume(ctx, m, "jupyterhub", home_size, node_selector)
    conda = _nfs_volume(ctx, m, "conda-store", literal(ctx.config.storage.conda_store), node_selector)
    return SharedVolumes(home=home[0], conda_store=conda[0], ready=(home[1], conda[1]))


def _nfs_volume(
    ctx: RenderContext, m: TerraformModule, name: str, size: str, node_selector: str
) -> tuple[str, Ref]:
    key = tf_key(name)
    labels = {"nebari.dev/storage-type": "nfs", "nebari.dev/volume": name}
    backing = m.resource(
        "kubernetes_persistent_volume_claim",
        f"{key}_nfs_storage",
        {
            "metadata": [{"name": f"{name}-nfs-storage", "namespace": NAMESPACE, "labels": labels}],
            "spec": [{"access_modes": ["ReadWriteOnce"], "resources": [{"requests": {"storage": size}}]}],
            # The claim binds when the NFS server pod is scheduled (WaitForFirstConsumer).
            "wait_until_bound": False,
        },
    )
    image = resolve_image(ctx, "nfs_server", field="images.nfs_server")
    container = {
        "name": "nfs-server",
        "image": image.ref,
        "ports": [{"name": port_name, "containerPort": port} for port_name, port in NFS_PORTS.items()],
        "securityContext": {"privileged": True},
        "volumeMounts": [{"name": "export", "mountPath": "/exports"}],
    }
    server = manifest(
        m,
        f"{key}_nfs_server",
        deployment(
            f"{name}-nfs",
            [container],
            node_selector,
            volumes=[{"name": "export", "persistentVolumeClaim": {"claimName": f"{name}-nfs-storage"}}],
            strategy="Recreate",
        ),
        after=(backing,),
    )
    svc = m.resource(
        "kubernetes_service",
        f"{key}_nfs",
        {
            "metadata": [{"name": f"{name}-nfs", "namespace": NAMESPACE, "labels": labels}],
            "spec": [
                {
                    "selector": {
                        "app.kubernetes.io/name": f"{name}-nfs",
                        "app.kubernetes.io/part-of": "nebari",
                    },
                    "port": [{"name": port_name, "port": port} for port_name, port in NFS_PORTS.items()],
                }
            ],
            "depends_on": depends(server),
        },
    )
    return _share(m, name, size, svc.attr("spec[0].cluster_ip", sandbox="10.96.0.20"), "nfs")


def _share(m: TerraformModule, name: str, size: str, server: str, kind: str) -> tuple[str, Ref]:
    """An nfs PersistentVolume at `server` and the RWX claim bound to it."""
    key = tf_key(name)
    labels = {"nebari.dev/storage-type": kind, "nebari.dev/volume": name}
    claim = f"{name}-${{var.namespace}}-share"
    volume = m.resource(
        "kubernetes_persistent_volume",
        f"{key}_share",
        {
            "metadata": [{"name": claim, "labels": labels}],
            "spec": [
                {
                    "capacity": {"storage": size},
                    "storage_class_name": "",
                    "access_modes": ["ReadWriteMany"],
                    "persistent_volume_source": [{"nfs": [{"server": server, "path": "/"}]}],
                }
            ],
        },
    )
    shared = m.resource(
        "kubernetes_persistent_volume_claim",
        f"{key}_share",
        {
            "metadata": [{"name": claim, "namespace": NAMESPACE, "labels": labels}],
            "spec": [
                {
                    "access_modes": ["ReadWriteMany"],
                    "storage_class_name": "",
                    "volume_name": volume.attr("metadata[0].name"),
                    "resources": [{"requests": {"storage": size}}],
                }
            ],
        },
    )
    return claim, shared
