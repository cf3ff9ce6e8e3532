"""Server profiles: the JupyterLab sizes users pick at login and the Dask worker sizes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from stagegraph.schema.base import OpenSection, Section, field_problem


class KubeSpawnerOverride(OpenSection):
    """KubeSpawner settings of a profile; any other KubeSpawner option is passed through."""

    cpu_limit: float = Field(gt=0, description="Most CPUs the server may use.")
    cpu_guarantee: float = Field(gt=0, description="CPUs reserved for the server.")
    mem_limit: str = Field(min_length=1, description="Most memory the server may use (e.g. 8G).")
    mem_guarantee: str = Field(min_length=1, description="Memory reserved for the server (e.g. 5G).")


class UnlistedChoice(Section):
    """A free-text choice of a profile option (e.g. any image name)."""

    enabled: bool = Field(False, description="Whether users may type their own value.")
    display_name: str = Field(description="Label of the text field.")
    display_name_in_choices: str | None = Field(
        None, description="Label of the free-text entry in the choice list."
    )
    validation_regex: str | None = Field(None, description="Regular expression the typed value must match.")
    validation_message: str | None = Field(None, description="Message shown when it does not.")
    kubespawner_override: dict[str, Any] = Field(
        description="KubeSpawner settings; {value} stands for the typed value."
    )


class ProfileOptionChoice(Section):
    """One choice of a profile option."""

    display_name: str = Field(description="Label of the choice.")
    default: bool | None = Field(False, description="Whether the choice is preselected.")
    kubespawner_override: dict[str, Any] = Field(description="KubeSpawner settings this choice applies.")


class ProfileOption(Section):
    """A drop-down shown under a profile (e.g. image or GPU type)."""

    display_name: str = Field(description="Label of the drop-down.")
    unlisted_choice: UnlistedChoice | None = Field(None, description="Optional free-text choice.")
    choices: dict[str, ProfileOptionChoice] = Field(description="Choices by key.")

    @field_validator("choices")
    @classmethod
    def _one_default(cls, value: dict[str, ProfileOptionChoice]) -> dict[str, ProfileOptionChoice]:
        defaults = [key for key, choice in value.items() if choice.default]
        if len(defaults) > 1:
            raise ValueError(f"at most one choice may have default: true ({' and '.join(defaults)} do)")
        return value


class JupyterLabProfile(Section):
    """A server size users can pick when they start JupyterLab."""

    access: Literal["all", "yaml", "keycloak"] = Field(
        "all",
        description="Who sees the profile: all users, the users/groups listed here (yaml), or those "
        "granted it in Keycloak (keycloak).",
    )
    display_name: str = Field(min_length=1, description="Name shown in the profile list.")
    description: str = Field(description="Text shown under the name.")
    default: bool = Field(False, description="Whether the profile is preselected (at most one).")
    users: list[str] | None = Field(None, description="Users who see the profile (access yaml only).")
    groups: list[str] | None = Field(
        None, description="Groups whose members see the profile (access yaml only)."
    )
    kubespawner_override: KubeSpawnerOverride | None = Field(
        None, description="Resources and KubeSpawner settings."
    )
    profile_options: dict[str, ProfileOption] = Field(
        default_factory=dict, description="Extra drop-downs shown under the profile."
    )

    @model_validator(mode="after")
    def _members_only_for_yaml(self) -> JupyterLabProfile:
        if self.access != "yaml":
            for name in ("users", "groups"):
                value = getattr(self, name)
                if value is not None:
                    raise field_problem(name, "allowed only with access: yaml", value)
        return self


class DaskWorkerProfile(OpenSection):
    """A Dask worker size; other Dask Gateway worker options are passed through."""

    worker_cores_limit: float = Field(gt=0, description="Most CPUs a worker may use.")
    worker_cores: float = Field(gt=0, description="CPUs reserved for a worker.")
    worker_memory_limit: str = Field(min_length=1, description="Most memory a worker may use (e.g. 8G).")
    worker_memory: str = Field(min_length=1, description="Memory reserved for a worker (e.g. 5G).")
    worker_threads: int = Field(1, ge=1, description="Threads per worker.")
    # Not in Nebari's schema (its Dask profiles are open to every Dask user); the same two
    # keys as a JupyterLab profile's `access: yaml`, so a large size can be kept for a group.
    users: list[str] | None = Field(
        None, description="Users who see the profile in Dask Gateway; with groups unset too: everyone."
    )
    groups: list[str] | None = Field(
        None,
        description="Groups whose members see the profile in Dask Gateway; with users unset too: everyone.",
    )


# Defaults are plain data validated by the parent model (`validate_default`), so loading a
# config never builds a validator per nested model just to make a default.
def _default_jupyterlab() -> list[dict[str, Any]]:
    return [
        {
            "display_name": "Small Instance",
            "description": "Stable environment with 2 cpu / 8 GB ram",
            "default": True,
            "kubespawner_override": {
                "cpu_limit": 2,
                "cpu_guarantee": 1.5,
                "mem_limit": "8G",
                "mem_guarantee": "5G",
            },
        },
        {
            "display_name": "Medium Instance",
            "description": "Stable environment with 4 cpu / 16 GB ram",
            "kubespawner_override": {
                "cpu_limit": 4,
                "cpu_guarantee": 3,
                "mem_limit": "16G",
                "mem_guarantee": "10G",
            },
        },
    ]


def _default_dask() -> dict[str, dict[str, Any]]:
    return {
        "Small Worker": {
            "worker_cores_limit": 2,
            "worker_cores": 1.5,
            "worker_memory_limit": "8G",
            "worker_memory": "5G",
            "worker_threads": 2,
        },
        "Medium Worker": {
            "worker_cores_limit": 4,
            "worker_cores": 3,
            "worker_memory_limit": "16G",
            "worker_memory": "10G",
            "worker_threads": 4,
        },
    }


class Profiles(Section):
    """JupyterLab and Dask worker profiles."""

    jupyterlab: list[JupyterLabProfile] = Field(
        default_factory=_default_jupyterlab,
        validate_default=True,
        description="JupyterLab server profiles, in display order.",
    )
    dask_worker: dict[str, DaskWorkerProfile] = Field(
        default_factory=_default_dask, validate_default=True, description="Dask worker profiles by name."
    )

    @field_validator("jupyterlab")
    @classmethod
    def _one_default(cls, value: list[JupyterLabProfile]) -> list[JupyterLabProfile]:
        defaults = [profile.display_name for profile in value if profile.default]
        if len(defaults) > 1:
            raise ValueError(f"at most one profile may have default: true ({' and '.join(defaults)} do)")
        return value
