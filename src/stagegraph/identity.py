"""Which deployment a folder holds: project name, provider and environment, checked every run.

A folder's records, state and lock belong to one deployment. A config that names another
project, or an environment config copied over another's folder, would otherwise re-apply
(or destroy) the resources recorded there under a new name. So the first command that
writes into a deployment folder records its identity in `.stagegraph/identity.json`, and
every later command compares its config with it and refuses a mismatch in one line.

The provider may change (sandbox first, then a real cluster), but only once nothing of the
old provider is applied: its stages would otherwise be orphaned with their state. A project
rename is a change of an immutable field (`stagegraph.immutable`): `doit deploy
--allow-change project_name` lets it through here too, and the new name is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from stagegraph.atomic import write_atomic
from stagegraph.deployment import label
from stagegraph.errors import StagegraphError
from stagegraph.modelfile import read_model

IDENTITY_FILE = "identity.json"


class IdentityError(StagegraphError):
    """The config does not belong to the deployment folder it would write into."""


class Identity(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    project_name: str
    provider: str
    environment: str

    def describe(self) -> str:
        return (
            f"project {self.project_name!r}, provider {self.provider}, environment {label(self.environment)}"
        )


def read_identity(state_dir: Path) -> Identity | None:
    return read_model(
        state_dir / IDENTITY_FILE,
        Identity,
        IdentityError,
        "not a deployment identity; restore it from a backup, or delete it if this folder "
        "holds the deployment of the config you are running",
    )


def check_identity(
    state_dir: Path,
    wanted: Identity,
    config_name: str,
    applied_stages: Callable[[], Sequence[str]],
    *,
    record: bool,
    allowed: frozenset[str] = frozenset(),
) -> None:
    """Refuse `wanted` if the folder holds another deployment; with `record`, write it down.

    `applied_stages` lists the stages applied in this folder (called only when the
    provider changes). Without `record` (read-only commands) nothing is written.
    """
    path = state_dir / IDENTITY_FILE
    found = read_identity(state_dir)
    if found is not None:
        for field in ("project_name", "environment"):
            if field in allowed:
                continue  # the user asked for this change by name (--allow-change)
            if getattr(found, field) != getattr(wanted, field):
                raise IdentityError(
                    f"{config_name}: {field} {label(getattr(wanted, field))!r} does not match the deployment "
                    f"in {state_dir.parent} ({found.describe()}, recorded in {path}); run the config of "
                    "that deployment, or give this config a folder of its own"
                )
        if found.provider != wanted.provider:
            applied = list(applied_stages())
            if applied:
                shown = ", ".join(applied[:3]) + (f" and {len(applied) - 3} more" if len(applied) > 3 else "")
                raise IdentityError(
                    f"{config_name}: provider {wanted.provider}: stages of provider {found.provider} are still "
                    f"applied in {state_dir.parent} ({shown}); run `doit destroy` with provider "
                    f"{found.provider} first, or set provider back to {found.provider}"
                )
    if record and found != wanted:
        state_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(path, wanted.model_dump_json(indent=2) + "\n")
