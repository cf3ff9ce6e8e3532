"""Records and lock kept where a deployment's Terraform state is, for teams.

Which store, from `terraform_state` (a rehearsal keeps everything on this machine):

- `type: existing, backend: s3`: objects next to the state in the bucket (`s3`);
- `type: existing, backend: gcs` / `azurerm`: objects / blobs next to the state, in the
  folder its `prefix` / `key` names (`gcs`, `azureblob`);
- `type: existing, backend: kubernetes`, and `type: remote` on the `existing` provider
  (Terraform's kubernetes backend, as Nebari uses): ConfigMaps and a Lease in the cluster,
  next to the state Secrets (`kube`);
- `type: remote` on aws, gcp, azure: the bucket or container stage 01 creates, in the
  folder the stages' state is in, once it exists (`bootstrap`: before, records and lock
  are on this machine; 01's own state is copied there too);
- anything else: records and lock stay in `.stagegraph/` on this machine. That includes
  `type: remote` on `local`: stages from 03 on keep their state in the kind cluster, but
  that cluster lives on this machine and does not exist before 02, so there is nobody to
  share records with and nowhere to keep 01's and 02's.

One lock algorithm (`lock`) and one record store (`records`) work on every store through
the conditional-write interface of `store`. Only actions import this package's modules
that talk to a store (boto3, the kubernetes client).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from stagegraph.errors import StagegraphError
from stagegraph.sharedstate.lock import Lease, LockLostError, hold_shared_lock, lost_lock, refuse_if_lost
from stagegraph.sharedstate.records import SharedRecordStore
from stagegraph.sharedstate.s3 import S3Client, S3Location
from stagegraph.sharedstate.store import LOCK_OBJECT, RECORDS_FOLDER, ConditionalStore, Versioned

if TYPE_CHECKING:
    from stagegraph.project import Project
    from stagegraph.sharedstate.azureblob import AzureBlobLocation
    from stagegraph.sharedstate.gcs import GCSLocation
    from stagegraph.sharedstate.kube import KubeLocation

    Location = S3Location | KubeLocation | GCSLocation | AzureBlobLocation

__all__ = [
    "LOCK_OBJECT",
    "RECORDS_FOLDER",
    "ConditionalStore",
    "Lease",
    "LockLostError",
    "S3Client",
    "S3Location",
    "SharedRecordStore",
    "Versioned",
    "backend_env",
    "hold_shared_lock",
    "lost_lock",
    "open_store",
    "refuse_if_lost",
    "shared_location",
]

#: The namespace of the state Secrets when nothing names one (Terraform's own default).
DEFAULT_NAMESPACE = "default"


def shared_location(project: Project) -> Location | None:
    """Where records and lock are shared, or None when they stay on this machine."""
    config = project.config
    state = config.terraform_state
    if config.stagegraph.rehearse:
        return None
    if state.type == "existing" and state.backend == "s3":
        from stagegraph.sharedstate.s3 import s3_location

        return s3_location(config)
    if state.type == "existing" and state.backend == "gcs":
        from stagegraph.sharedstate.gcs import gcs_location

        return gcs_location(config)
    if state.type == "existing" and state.backend == "azurerm":
        from stagegraph.sharedstate.azureblob import azure_location

        return azure_location(config)
    if state.type == "existing" and state.backend == "kubernetes":
        return _kube_backend_location(project, os.environ)
    if state.type == "remote" and config.provider == "existing":
        return _existing_cluster_location(project)
    from stagegraph.sharedstate.bootstrap import location, made_by_state_stage

    if made_by_state_stage(config):
        return location(config)  # once stage 01 made it (`Project.shared_store`)
    return None


def open_store(where: Location) -> ConditionalStore:
    from stagegraph.sharedstate.azureblob import AzureBlobLocation, AzureBlobStore
    from stagegraph.sharedstate.gcs import GCSLocation, GCSStore
    from stagegraph.sharedstate.kube import KubeStore

    if isinstance(where, S3Location):
        return S3Client(where)
    if isinstance(where, GCSLocation):
        return GCSStore(where)
    if isinstance(where, AzureBlobLocation):
        return AzureBlobStore(where)
    return KubeStore(where)


def _kube_backend_location(project: Project, environ: Mapping[str, str]) -> KubeLocation:
    """`backend: kubernetes` as the user wrote it: the kubeconfig, context and namespace
    Terraform's backend uses (its settings, else its environment variables)."""
    from pathlib import Path

    from stagegraph.kube.client import KubeTarget
    from stagegraph.sharedstate.kube import KubeLocation
    from stagegraph.stages.cloud.names import kube_state_deployment

    body = project.config.terraform_state.config
    path = body.get("config_path") or environ.get("KUBE_CONFIG_PATH", "")
    if not path:
        raise StagegraphError(
            "terraform_state.config.config_path: the kubernetes backend needs the kubeconfig that "
            "reaches the cluster holding the state; set it (or KUBE_CONFIG_PATH)"
        )
    if not Path(path).expanduser().is_absolute():
        raise StagegraphError(
            f"terraform_state.config.config_path: {path!r} is relative, and Terraform reads it from "
            "each stage directory; give an absolute path or one starting with ~"
        )
    context = body.get("config_context") or environ.get("KUBE_CTX") or None
    namespace = body.get("namespace") or environ.get("KUBE_NAMESPACE") or DEFAULT_NAMESPACE
    return KubeLocation(
        KubeTarget(str(Path(path).expanduser()), context), namespace, kube_state_deployment(project.config)
    )


def _existing_cluster_location(project: Project) -> KubeLocation:
    """`type: remote` on `existing`: the cluster's own kubeconfig, as 02-infrastructure finds it."""
    from stagegraph.inputs import machine_context
    from stagegraph.kube.client import KubeTarget
    from stagegraph.sharedstate.kube import KubeLocation
    from stagegraph.stages.cloud.names import kube_state_deployment
    from stagegraph.stages.infrastructure import existing_access

    access = existing_access(machine_context(project))
    return KubeLocation(
        KubeTarget(str(access["kubeconfig_path"]), access["kube_context"]),
        DEFAULT_NAMESPACE,
        kube_state_deployment(project.config),
    )


def backend_env(project: Project, stage_name: str, backend_kind: str | None = None) -> dict[str, str]:
    """What Terraform's kubernetes backend needs from the machine to find the cluster.

    A backend block takes no variables and the render holds no machine path, so the
    kubeconfig and context reach `terraform init` as the backend's own environment
    variables (KUBE_CONFIG_PATH, KUBE_CTX), from where 02-infrastructure finds them:
    `existing`: existing.kubeconfig, KUBECONFIG, ~/.kube/config; `local`: the kubeconfig
    kind wrote (02's recorded output). Empty for every other backend.
    `backend_kind` is the backend a stage's render names, for a stage no longer in the graph
    (an orphan, destroyed from its recorded render); otherwise the graph's stage says.
    """
    from stagegraph.render import stage_backend

    config = project.config
    if config.terraform_state.type != "remote":
        return {}
    if backend_kind is None:
        backend = stage_backend(project.graph[stage_name], config) if stage_name in project.graph else None
        backend_kind = next(iter(backend["terraform"]["backend"])) if backend is not None else None
    if backend_kind != "kubernetes":
        return {}
    if config.provider == "existing":
        from stagegraph.inputs import machine_context
        from stagegraph.stages.infrastructure import existing_access

        access = existing_access(machine_context(project))
        path, context = access["kubeconfig_path"], access["kube_context"]
    elif config.provider == "local":
        infra = project.records.get("02-infrastructure")
        outputs = infra.outputs if infra is not None else {}
        path, context = outputs.get("kubeconfig_path"), outputs.get("kube_context")
        if not path:
            raise StagegraphError(
                f"{stage_name}: its state is in the kind cluster, whose kubeconfig 02-infrastructure "
                "records when it applies; deploy 02-infrastructure first"
            )
    else:
        return {}
    return {"KUBE_CONFIG_PATH": str(path), **({"KUBE_CTX": str(context)} if context else {})}
