"""Sections read before any cluster exists: CI/CD workflow generation and Terraform state."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stagegraph.schema.base import Section, StrOrMapping


class CICD(Section):
    """Generate a CI/CD workflow that deploys on pushes to a branch."""

    type: Literal["github-actions", "gitlab-ci", "none"] = Field(
        "none",
        description="CI/CD system to write a deploy workflow for, or none: `doit render` writes "
        ".github/workflows/nebari-ops[.<env>].yaml or one job per environment in .gitlab-ci.yml.",
    )
    branch: str = Field("main", description="Branch whose pushes trigger a deploy.")
    commit_render: bool = Field(
        True, description="Whether the workflow commits the rendered stage files back to the branch."
    )
    before_script: list[StrOrMapping] = Field(
        default_factory=list, description="Extra steps (commands or step mappings) run before the deploy."
    )
    after_script: list[StrOrMapping] = Field(
        default_factory=list, description="Extra steps (commands or step mappings) run after the deploy."
    )


class TerraformState(Section):
    """Where every stage keeps its Terraform state."""

    type: Literal["remote", "local", "existing"] = Field(
        "remote",
        description="remote: on aws/gcp/azure a state bucket stage 01 creates; on existing, every "
        "stage's state in a Secret of the cluster (Terraform's kubernetes backend, as Nebari), with "
        "stagegraph's deploy records (ConfigMaps) and lock (a Lease) beside it; on local, the same "
        "from stage 03 on (the kind cluster exists only after 02), records and lock staying on this "
        "machine; on sandbox, local state files. local: state files next to each rendered stage. "
        "existing: a backend you already run, named in backend/config (s3, gcs, azurerm and kubernetes "
        "also hold the shared records and lock).",
    )
    backend: str | None = Field(
        None, description="Terraform backend type for type existing (e.g. s3, gcs, azurerm, kubernetes, pg)."
    )
    config: dict[str, str] = Field(
        default_factory=dict,
        description="Settings of that backend, as in a Terraform backend block (kubernetes: config_path "
        "absolute or ~, config_context, namespace; secret_suffix names the deployment, each stage "
        "gets its own Secret).",
    )
    lock_lease_s: float = Field(
        60,
        gt=0,
        le=3600,
        description="Where records and lock are shared (existing: s3, gcs, azurerm or kubernetes backend; remote on "
        "the existing provider; remote on aws, gcp or azure once stage 01 created its bucket; and the store "
        "`doit move_state` moves out of): seconds a deploy's shared lock lives "
        "unless its holder renews it "
        "(it does, every third); a holder that dies leaves a lock that expires this long after its "
        "last renewal, and a holder that cannot renew within it stops starting stages and fails.",
    )
    lock_wait_s: float = Field(
        0,
        ge=0,
        le=7200,
        description="Where records and lock are shared (as for lock_lease_s): seconds a run waits for "
        "another run's shared lock before failing with the holder's name (CI runners queue this way).",
    )
