"""conda-store: the server settings and the conda environments it builds at deploy."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from stagegraph.schema.base import NumberOrStr, Quantity, Section, StrOrMapping


class CondaEnvironment(Section):
    """A conda environment file, as conda-store reads it."""

    name: str = Field(min_length=1, description="Environment name.")
    channels: list[str] | None = Field(None, description="Conda channels, in priority order.")
    dependencies: list[StrOrMapping] = Field(
        description="Conda package specs, and optionally one mapping {pip: [specs]}."
    )


def _dask_environment() -> dict[str, Any]:
    return dict(
        name="dask",
        channels=["conda-forge"],
        dependencies=[
            "python==3.11.6",
            "ipykernel==6.26.0",
            "ipywidgets==8.1.1",
            "nebari-dask==2025.10.1",
            "python-graphviz==0.20.1",
            "pyarrow==14.0.1",
            "s3fs==2023.10.0",
            "gcsfs==2023.10.0",
            "numpy=1.26.0",
            "numba=0.58.1",
            "pandas=2.1.3",
            "xarray==2023.10.1",
        ],
    )


def _dashboard_environment() -> dict[str, Any]:
    return dict(
        name="dashboard",
        channels=["conda-forge"],
        dependencies=[
            "python==3.11.6",
            "cufflinks-py==0.17.3",
            "dash==2.14.1",
            "geopandas==0.14.1",
            "geopy==2.4.0",
            "geoviews==1.11.0",
            "gunicorn==21.2.0",
            "holoviews==1.18.1",
            "ipykernel==6.26.0",
            "ipywidgets==8.1.1",
            "jupyter==1.0.0",
            "jupyter_bokeh==3.0.7",
            "matplotlib==3.8.1",
            "nebari-dask==2025.10.1",
            "nodejs=20.8.1",
            "numpy==1.26.0",
            "openpyxl==3.1.2",
            "pandas==2.1.3",
            "panel==1.3.1",
            "param==2.0.1",
            "plotly==5.18.0",
            "python-graphviz==0.20.1",
            "rich==13.6.0",
            "streamlit==1.28.1",
            "sympy==1.12",
            "voila==0.5.5",
            "xarray==2023.10.1",
            "pip==23.3.1",
            {
                "pip": [
                    "streamlit-image-comparison==0.0.4",
                    "noaa-coops==0.1.9",
                    "dash_core_components==2.0.0",
                    "dash_html_components==2.0.0",
                ]
            },
        ],
    )


def default_environments() -> dict[str, dict[str, Any]]:
    """Nebari 2025.10.1's two starter environments, as data (validated by the parent model)."""
    return {
        "environment-dask.yaml": _dask_environment(),
        "environment-dashboard.yaml": _dashboard_environment(),
    }


class WorkerResources(Section):
    """Resources of each conda-store build worker."""

    cpu_limit: NumberOrStr | None = Field(2, description="Most CPUs a build worker may use.")
    mem_limit: NumberOrStr | None = Field("6Gi", description="Most memory a build worker may use.")
    cpu_guarantee: NumberOrStr | None = Field(1, description="CPUs reserved for a build worker.")
    mem_guarantee: NumberOrStr | None = Field("4Gi", description="Memory reserved for a build worker.")


class CondaStoreWorker(Section):
    """conda-store build workers."""

    resources: WorkerResources | None = Field(
        default_factory=dict, validate_default=True, description="Resources of each worker."
    )
    max_workers: int | None = Field(
        None, ge=1, description="Most concurrent build workers (null: the chart default)."
    )


class CondaStore(Section):
    """The conda-store server."""

    extra_settings: dict[str, Any] = Field(
        default_factory=dict, description="conda-store traitlets settings by class."
    )
    extra_config: str = Field("", description="Python appended to conda-store's configuration file.")
    image: str | None = Field(
        None, description="Server image name; null: the image pinned in lockfiles/versions.yaml."
    )
    image_tag: str | None = Field(
        None, description="Server image tag; null: the tag pinned in lockfiles/versions.yaml."
    )
    default_namespace: str = Field(
        "nebari-git", description="Namespace of the environments listed in this file."
    )
    object_storage: Quantity = Field(
        "200Gi",
        description="Size of conda-store's object storage volume (MinIO: build artifacts such as "
        "lockfiles, logs and archives).",
    )
    worker: CondaStoreWorker = Field(
        default_factory=dict,
        validate_default=True,
        description="Build worker settings; left out or null: the defaults described in it apply.",
    )

    @field_validator("worker", mode="before")
    @classmethod
    def _null_worker(cls, value: Any) -> Any:
        # Nebari writes `worker: null` meaning the defaults; they apply, never nothing.
        return {} if value is None else value
