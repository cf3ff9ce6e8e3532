"""Platform services: images, storage, Argo Workflows, monitoring and Rook Ceph."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from stagegraph.schema.base import Quantity, Section


class DefaultImages(Section):
    """Images of the hub, the lab servers and the Dask workers.

    Null means the image pinned in lockfiles/versions.yaml, so the quarterly bumps move
    it; set a full `name:tag` to hold or replace it.
    """

    jupyterhub: str | None = Field(None, description="JupyterHub image (name:tag); null: the pinned one.")
    jupyterlab: str | None = Field(None, description="JupyterLab image (name:tag); null: the pinned one.")
    dask_worker: str | None = Field(None, description="Dask worker image (name:tag); null: the pinned one.")


class Storage(Section):
    """Persistent volumes of the platform."""

    type: Literal["nfs", "cephfs", "efs"] | None = Field(
        None,
        description="Shared filesystem: nfs, cephfs (not on local/sandbox) or efs (aws only); null: efs on "
        "aws, nfs elsewhere. Cannot change after the first deploy.",
    )
    conda_store: Quantity = Field("200Gi", description="Size of the conda-store environments volume.")
    shared_filesystem: Quantity = Field("200Gi", description="Size of the shared home directories volume.")


class NebariWorkflowController(Section):
    """Runs Argo workflows as the user who submitted them."""

    enabled: bool = Field(True, description="Whether to install the controller.")
    image_tag: str | None = Field(
        None, description="Controller image tag; null: the tag pinned in lockfiles/versions.yaml."
    )


class ArgoWorkflows(Section):
    """Argo Workflows."""

    enabled: bool = Field(True, description="Whether to install Argo Workflows.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Helm values merged into the Argo chart."
    )
    nebari_workflow_controller: NebariWorkflowController = Field(
        default_factory=dict, validate_default=True, description="The Nebari workflow controller."
    )


class MonitoringOverrides(Section):
    """Helm values of the log stack charts."""

    loki: dict[str, Any] = Field(default_factory=dict, description="Helm values merged into the Loki chart.")
    promtail: dict[str, Any] = Field(
        default_factory=dict, description="Helm values merged into the Promtail chart."
    )
    minio: dict[str, Any] = Field(
        default_factory=dict, description="Helm values merged into the MinIO chart."
    )


#: What `nebari init --explicit` writes for monitoring.healthchecks.kuberhealthy_helm_version.
NEBARI_KUBERHEALTHY_HELM_VERSION = "100"


class Healthchecks(Section):
    """Kuberhealthy health checks (stages 10 and 11)."""

    enabled: bool = Field(False, description="Whether to install Kuberhealthy and the platform checks.")
    kuberhealthy_helm_version: str | None = Field(
        None,
        description="Nebari's Kuberhealthy chart version. stagegraph deploys Kuberhealthy from manifests "
        "with the image pinned in lockfiles/versions.yaml, so only null or Nebari's default (100) is accepted.",
    )

    @field_validator("kuberhealthy_helm_version", mode="before")
    @classmethod
    def _pinned_only(cls, value: Any) -> Any:
        # Nebari writes its default, "100", into every explicit config: that means "the
        # release's Kuberhealthy", which here is the lockfile's pin. Any other value would
        # be ignored, so it is refused.
        if value is not None and str(value) != NEBARI_KUBERHEALTHY_HELM_VERSION:
            raise ValueError(
                "stagegraph deploys Kuberhealthy from manifests with images.kuberhealthy of "
                "lockfiles/versions.yaml, not from this chart version; remove the key (or bump the pin)"
            )
        return None if value is None else str(value)


class Monitoring(Section):
    """Prometheus, Grafana and Loki."""

    enabled: bool = Field(True, description="Whether to install the monitoring stack.")
    overrides: MonitoringOverrides = Field(
        default_factory=dict, validate_default=True, description="Chart overrides."
    )
    minio_enabled: bool = Field(True, description="Whether to run MinIO as Loki's log store.")
    healthchecks: Healthchecks = Field(
        default_factory=dict, validate_default=True, description="Kuberhealthy health checks."
    )


class RookCeph(Section):
    """Rook Ceph, used when storage.type is cephfs."""

    storage_class_name: str | None = Field(
        None, description="Storage class backing the Ceph volumes (null: the default)."
    )
