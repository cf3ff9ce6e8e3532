"""`type: remote` on a cloud: records, lock and stage 01's own state live in the store 01 creates.

Stage 01 creates the bucket (S3, GCS) or container (Azure Blob) that every later stage keeps
its Terraform state in. 01 cannot keep its own state there (the store would hold the state
of the resources that hold it, and destroying 01 would delete it mid-write), so Terraform
writes 01's state next to its stage folder. For a team that is not enough: a second clone
or a CI runner has no copy, and its records would say 01 is applied with a state it lacks.
So the store's life decides where records, lock and 01's state are:

- **before 01 applied** (no bucket anywhere yet): records and lock on this machine, as for
  local state;
- **once the bucket exists** (01 applied, here or on another machine): the shared lock in the
  bucket (`sharedstate.lock`), records beside the stages' state (`sharedstate.records`), and a
  copy of 01's state as the object `state/01-terraform-state.tfstate`. Under both locks,
  each run moves this machine's records in (a record already in the bucket is kept unless
  this machine's is newer, so a run killed before moving them loses nothing) and levels
  01's state: pushed after 01 applies, at the version read, so a copy another run wrote is
  never overwritten; pulled into the stage folder by a clone that has none or an older one
  (same lineage, lower serial; another lineage is refused, never overwritten);
- **when 01 is destroyed** (which deletes the bucket and everything in it): first the
  records come back to this machine, so the last records, like the first, are local.

The bucket is found by its name (`stages.cloud.names`), the one 01 renders: nothing about it
is cached on this machine, so a clone with an empty `.stagegraph/` finds it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from stagegraph.atomic import write_atomic
from stagegraph.errors import DeployError
from stagegraph.records import RecordStore
from stagegraph.tfstate import STATE_FILE, StateError, StateIdentity

if TYPE_CHECKING:
    from pathlib import Path

    from stagegraph.deploy import Runtime
    from stagegraph.project import Project
    from stagegraph.schema.config import NebariConfig
    from stagegraph.sharedstate.azureblob import AzureBlobLocation
    from stagegraph.sharedstate.gcs import GCSLocation
    from stagegraph.sharedstate.s3 import S3Location
    from stagegraph.sharedstate.store import ConditionalStore

#: Where 01's state is kept in its own store, beside the records.
STATE_OBJECT = "state/01-terraform-state.tfstate"
STATE_MODE = 0o600


def made_by_state_stage(config: NebariConfig) -> bool:
    """Whether the deployment's shared store is the one its own stage 01 creates."""
    from stagegraph.stages.cloud.names import is_cloud

    return (
        config.terraform_state.type == "remote"
        and is_cloud(config.provider)
        and not config.stagegraph.rehearse
    )


def location(config: NebariConfig) -> S3Location | GCSLocation | AzureBlobLocation:
    """The folder of the store 01 creates: the one every later stage's backend block names."""
    from stagegraph.stages.cloud import names

    folder = names.remote_folder(config)
    if config.provider == "aws":
        from stagegraph.sharedstate.s3 import S3Location as S3

        return S3(
            bucket=names.state_bucket(config),
            prefix=folder,
            region=names.aws_section(config).region,
            path_style=False,
        )
    if config.provider == "gcp":
        from stagegraph.sharedstate.gcs import GCSLocation as GCS

        return GCS(names.state_bucket(config), folder)
    from stagegraph.sharedstate.azureblob import AzureBlobLocation as Azure

    return Azure(names.azure_storage_account(config), names.azure_container(config), folder)


def _stage_dir(project: Project) -> Path:
    from stagegraph.render import STATE_STAGE

    return project.stage_dir(project.graph[STATE_STAGE])


def _identity(data: bytes) -> StateIdentity | None:
    try:
        body = json.loads(data)
        return StateIdentity(lineage=body["lineage"], serial=body["serial"])
    except (ValueError, KeyError, TypeError):
        return None


def opened(project: Project, store: ConditionalStore) -> ConditionalStore | None:
    """`store` once 01 created it, with 01's state brought here if this machine lacks it or
    has an older one; None while there is no store yet (records stay on this machine)."""
    if not store.exists():
        return None
    level_state(project, store, push=False)
    return store


def level_state(project: Project, store: ConditionalStore, *, push: bool = True) -> None:
    """Make 01's state here and in the store the same, the newer copy winning.

    `push` (only under the shared lock): a copy here that is newer, or the only one, goes
    to the store at the version read. Another lineage on either side is refused: one of
    the two is some other deployment's, and which one is for a person to say.
    """
    stage_dir = _stage_dir(project)
    path = stage_dir / STATE_FILE
    there = store.get(STATE_OBJECT)
    try:
        here = path.read_bytes()
    except FileNotFoundError:
        here = None
    except OSError as exc:
        raise StateError(f"{path}: cannot read stage 01's Terraform state ({exc.strerror})") from None
    theirs = _identity(there.data) if there is not None else None
    mine = _identity(here) if here is not None else None
    if there is not None and theirs is None:
        raise StateError(
            f"{store.describe(STATE_OBJECT)}: not a Terraform state; delete it to make the next deploy "
            f"store {path} there again"
        )
    if theirs is not None and (
        here is None or (mine is not None and mine.lineage == theirs.lineage and mine.serial < theirs.serial)
    ):
        assert there is not None
        write_atomic(path, there.data, STATE_MODE)
        return
    if mine is None or not push:
        return  # nothing of ours to give (an unreadable file is check_state's to name)
    if theirs is not None and theirs.lineage != mine.lineage:
        raise StateError(
            f"{path}: stage 01's state here (lineage {mine.lineage}) is not the one in "
            f"{store.describe(STATE_OBJECT)} (lineage {theirs.lineage}), so one of them is another "
            "deployment's: if the store's is right, `doit forget_state 01-terraform-state` sets this one "
            "aside and the next deploy takes the store's; if this one is, copy it over the store's"
        )
    if theirs is not None and theirs.serial >= mine.serial:
        return
    assert here is not None
    written = (
        store.create(STATE_OBJECT, here)
        if there is None
        else store.replace(STATE_OBJECT, here, there.version)
    )
    if written is None:
        raise DeployError(
            f"{store.describe(STATE_OBJECT)}: another run wrote stage 01's state while this run held the "
            "shared lock; its lock was lost: run `doit status`, then deploy again"
        )


def move_records_in(project: Project) -> None:
    """Put this machine's records into the shared store, then delete them here.

    A record the store already holds is kept unless this machine's was attempted later (a
    run that destroyed 01, failed, and left its last records here)."""
    local = RecordStore(project.state_dir)
    records, problems = local.scan()
    if problems:
        raise next(iter(problems.values()))
    shared = project.records
    for stage, record in sorted(records.items()):
        theirs = shared.get(stage)
        if theirs is None or record.attempted_at > theirs.attempted_at:
            shared.put(record)
        local.delete(stage)


def settle(project: Project, store: ConditionalStore) -> None:
    """Under both locks: 01's state level, then the records in.

    In that order: a 01 state of another lineage here (two machines that both applied 01
    before either had a bucket to find) is refused before its record could replace the
    bucket's, so the bucket keeps one consistent pair."""
    level_state(project, store)
    move_records_in(project)


def after_apply(rt: Runtime, stage: str) -> None:
    """After 01 applied: move records, lock and 01's state into the store it has made."""
    from stagegraph.render import STATE_STAGE

    project = rt.project
    if stage != STATE_STAGE or not made_by_state_stage(project.config):
        return
    store = project.shared_store
    said = f"this stage's state copied to {STATE_OBJECT} in {store.describe('')}" if store else ""
    if store is None:  # the first apply: the store exists from now on
        from stagegraph.sharedstate.lock import Lease, hold_shared_lock

        project.look_for_stores_again()
        store = project.shared_store
        if store is None:
            raise DeployError(
                f"{location(project.config).url('')}: stage 01 applied, but its store does not "
                "answer as existing; run `doit status`, then deploy again"
            )
        state = project.config.terraform_state
        hold_shared_lock(store, rt.summary.command, Lease(state.lock_lease_s, state.lock_wait_s))
    settle(project, store)
    rt.console.line(stage, said or f"records, lock and this stage's state now live in {store.describe('')}")


def before_destroy(rt: Runtime, stage: str) -> None:
    """Before 01 is destroyed (and its store with it): the records come back to this machine."""
    from stagegraph.render import STATE_STAGE

    project = rt.project
    if stage != STATE_STAGE or not made_by_state_stage(project.config):
        return
    store = project.shared_store
    if store is None:
        return
    level_state(project, store)
    records, problems = project.records.scan()
    if problems:
        raise next(iter(problems.values()))
    local = project.keep_records_here()
    for record in records.values():
        local.put(record)
    rt.console.line(stage, f"records copied back from {store.describe('')}, which this stage deletes")


def after_destroy(project: Project, stage: str) -> None:
    """01 destroyed: its store, and the lock in it, are gone; release nothing there at exit."""
    from stagegraph.render import STATE_STAGE
    from stagegraph.sharedstate.lock import forget_shared_lock

    if stage != STATE_STAGE or not made_by_state_stage(project.config):
        return
    store = project.shared_store  # computed before 01 destroyed it
    if store is not None:
        forget_shared_lock(store)
    project.keep_records_here(store_gone=True)
