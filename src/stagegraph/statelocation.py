"""Where a deployment's Terraform state and records are: known, recorded, and checked every run.

The config's `terraform_state` says where the state *should* be; where it *is* follows from
the last command that wrote it. Guessing from the config alone would point a deploy at an
empty store after an edit (every stage applied again, duplicates of everything), so the
location each state-touching command works with is written to `.stagegraph/state-location.json`
(backend type and its non-secret settings), and every such command compares it with the
config first. A difference is refused in one line that names `doit move_state`.

Deployments older than this file have none: their location is read off what they hold
(local records while the config names a shared store: the state is on this machine), else it
is the config's, as it always was. A store the state was moved away from keeps a marker
(`moved.json`) saying where it went, so a clone whose config still names it is refused too.

Secret backend settings (access keys, tokens, passwords) are never written here: the move
reads them from the config or the environment.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from stagegraph.atomic import write_atomic
from stagegraph.errors import StagegraphError
from stagegraph.modelfile import read_model

if TYPE_CHECKING:
    from stagegraph.project import Project
    from stagegraph.schema.config import NebariConfig
    from stagegraph.sharedstate import ConditionalStore

LOCATION_FILE = "state-location.json"
JOURNAL_FILE = "state-move.json"
MARKER_OBJECT = "moved.json"

#: Settings names that may hold credentials: never recorded, never printed.
_SECRET = re.compile(
    r"(secret|password|passwd|token|conn_str|certificate|credentials|_key|key_data)$",
    re.IGNORECASE,
)


class StateLocationError(StagegraphError):
    """The config points at another state location than the one the state is in."""


class StateLocation(BaseModel):
    """A backend and its non-secret settings; `local` is state files next to each stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    #: `existing`: a backend the user runs; `remote`: the store a cloud's stage 01 creates.
    kind: Literal["local", "existing", "remote"]
    settings: dict[str, str] = {}

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def place(self) -> tuple[str, ...]:
        """What identifies the place (not how to reach it: endpoints' flags, retries...)."""
        if self.backend == "s3":
            from stagegraph.stages.cloud.names import s3_prefix

            return (self.kind, "s3", self.settings.get("bucket", ""), s3_prefix(self.settings))
        return (self.kind, self.backend, *(f"{k}={v}" for k, v in sorted(self.settings.items())))

    def describe(self) -> str:
        if self.is_local:
            return "local state files (next to each stage)"
        if self.kind == "remote" and self.backend == "kubernetes":
            return "Secrets in the cluster (Terraform's kubernetes backend)"
        if self.kind == "remote":
            return f"the {self.backend} store stage 01 created"
        if self.backend == "s3":
            from stagegraph.stages.cloud.names import s3_prefix

            return f"s3://{self.settings.get('bucket', '')}/{s3_prefix(self.settings)}/"
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return f"the {self.backend} backend ({shown})"


LOCAL = StateLocation(backend="local", kind="local")


def public_settings(settings: dict[str, Any]) -> dict[str, str]:
    # By the end of the name: `skip_credentials_validation` is a flag, `access_key` a secret.
    return {k: str(v) for k, v in sorted(settings.items()) if not _SECRET.search(k)}


def configured_location(config: NebariConfig) -> StateLocation:
    """Where the config says every stage keeps its state (`stagegraph.render.stage_backend`)."""
    from stagegraph.stages.cloud.names import is_cloud, remote_backend

    state = config.terraform_state
    if state.type == "existing" and state.backend:
        return StateLocation(backend=state.backend, kind="existing", settings=public_settings(state.config))
    if state.type == "remote" and is_cloud(config.provider):
        found = remote_backend(config, "stage")
        if found is not None:
            body = {k: v for k, v in found[1].items() if k not in ("key", "prefix")}
            return StateLocation(backend=found[0], kind="remote", settings=public_settings(body))
    if state.type == "remote" and config.provider in ("existing", "local"):
        # Nebari's kubernetes backend in the cluster (on `local` from stage 03 on); which
        # kubeconfig reaches it is the machine's business, not part of the place.
        return StateLocation(backend="kubernetes", kind="remote", settings={"in": "the cluster"})
    return LOCAL


#: What a location or journal file that does not parse should have been, and what to do.
_INVALID = (
    "not a stagegraph state location; restore it from a backup (it says where this "
    "deployment's Terraform state is)"
)


def recorded_location(state_dir: Path) -> StateLocation | None:
    return read_model(state_dir / LOCATION_FILE, StateLocation, StateLocationError, _INVALID)


def write_location(state_dir: Path, where: StateLocation) -> None:
    write_atomic(state_dir / LOCATION_FILE, where.model_dump_json(indent=2) + "\n", 0o600)


class MoveJournal(BaseModel):
    """A move under way (`doit move_state`): written before the first copy, removed after the last step."""

    model_config = ConfigDict(extra="forbid")

    source: StateLocation
    target: StateLocation
    stamp: str
    #: The records and the location file name the target: what is left is retiring the source.
    switched: bool = False


def read_journal(state_dir: Path) -> MoveJournal | None:
    return read_model(state_dir / JOURNAL_FILE, MoveJournal, StateLocationError, _INVALID)


def write_journal(state_dir: Path, journal: MoveJournal) -> None:
    write_atomic(state_dir / JOURNAL_FILE, journal.model_dump_json(indent=2) + "\n", 0o600)


# --- the shared store's own objects -------------------------------------------------------------


class StoreObjects:
    """Plain objects in a shared store's folder beside its records, written unconditionally.

    Only where the store is a folder of objects (S3): Kubernetes keeps one ConfigMap per
    record and every managed ConfigMap is a record, so nothing else may live there.
    """

    def __init__(self, store: ConditionalStore) -> None:
        self.store = store

    def get(self, name: str) -> bytes | None:
        got = self.store.get(name)
        return None if got is None else got.data

    def put(self, name: str, data: bytes) -> None:
        for _ in range(5):  # bounded: another writer between our read and write
            got = self.store.get(name)
            done = (
                self.store.create(name, data) if got is None else self.store.replace(name, data, got.version)
            )
            if done is not None:
                return
        raise StagegraphError(f"{self.store.describe(name)}: kept changing while being written; run again")

    def delete(self, name: str) -> bool:
        return self.store.delete(name)

    def url(self, name: str) -> str:
        return self.store.describe(name)


def store_objects(project: Project) -> StoreObjects | None:
    """The object folder of `project`'s shared store; None when there is none (see StoreObjects)."""
    store = project.shared_store
    from stagegraph.sharedstate import S3Client

    return StoreObjects(store) if isinstance(store, S3Client) else None


def moved_marker(to: StateLocation) -> bytes:
    """What a store the state left says: where it went, who moved it, when."""
    body = {
        "moved_to": to.model_dump(),
        "described": to.describe() + ("" if not to.is_local else f" on {socket.gethostname()}"),
        "by": socket.gethostname(),
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return (json.dumps(body, indent=2) + "\n").encode()


def _marker_line(data: bytes) -> str:
    try:
        body = json.loads(data)
        return f"{body['described']} (moved by `doit move_state` on {body['by']} at {body['at']})"
    except (ValueError, KeyError, TypeError):
        return "another place (an unreadable moved.json)"


# --- the check every state-touching command makes ------------------------------------------------


def _local_records(state_dir: Path) -> list[Path]:
    folder = state_dir / "records"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def current_location(project: Project) -> StateLocation:
    """Where the state is: as recorded, else as read off the folder (older deployments)."""
    found = recorded_location(project.state_dir)
    if found is not None:
        return found
    wanted = configured_location(project.config)
    from stagegraph.sharedstate.bootstrap import made_by_state_stage

    # Records on this machine while the config names a shared store: the state is here too.
    # Not for the store a cloud's 01 makes: its records start here, whatever holds the state.
    if (
        not made_by_state_stage(project.config)
        and project.shared_store is not None
        and _local_records(project.state_dir)
    ):
        return LOCAL
    return wanted


def _nothing_left_here(project: Project, found: StateLocation) -> bool:
    """Nothing to move: every stage kept on this machine is destroyed (or none ever ran), so
    the config may name a new place without `move_state` (a folder after `doit destroy`)."""
    if not found.is_local:
        return False  # asking a shared store would be a request per stage; move_state knows
    from stagegraph.records import RecordStore

    records, problems = RecordStore(project.state_dir).scan()
    return not problems and all(r.status == "destroyed" for r in records.values())


def check_location(project: Project, *, ask_store: bool = True) -> None:
    """Refuse a config whose `terraform_state` is not where the state is; one line, nothing written.

    `ask_store=False` (`doit render`): only what this machine recorded, no request to the store
    for the marker a move leaves there."""
    if project.config.stagegraph.rehearse:
        return  # a rehearsal keeps its own local state whatever the config says
    state_dir = project.state_dir
    journal = read_journal(state_dir)
    if journal is not None:
        raise StateLocationError(
            f"{state_dir / JOURNAL_FILE}: a state move from {journal.source.describe()} to "
            f"{journal.target.describe()} was interrupted: run `doit move_state` to finish it"
        )
    wanted = configured_location(project.config)
    found = current_location(project)
    if found.place() != wanted.place() and not _nothing_left_here(project, found):
        raise StateLocationError(
            f"{project.config_name}: state is in {found.describe()}, the config says {wanted.describe()}: "
            "run `doit move_state`"
        )
    objects = store_objects(project) if ask_store else None
    marker = objects.get(MARKER_OBJECT) if objects is not None else None
    if marker is not None:
        raise StateLocationError(
            f"{project.config_name}: state is in {_marker_line(marker)}, the config says "
            f"{wanted.describe()}: point terraform_state at it, or run `doit move_state` where it is"
        )


def record_location(project: Project) -> None:
    """Write down where the state is, once `check_location` passed (commands that hold the lock)."""
    if project.config.stagegraph.rehearse:
        return
    wanted = configured_location(project.config)
    if recorded_location(project.state_dir) != wanted:
        write_location(project.state_dir, wanted)
