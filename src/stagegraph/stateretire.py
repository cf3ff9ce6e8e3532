"""Retiring the place a state moved out of (`doit move_state`, step 5): nothing is deleted
that is not kept elsewhere first.

Local state files, Terraform's note of the old backend (`.terraform/terraform.tfstate`) and
local records go into `.stagegraph/state-moved/<when>/`. A store that is a folder of objects
(S3) keeps its old state objects and records under `retired/<when>/` and a `moved.json`
naming the new place; a store of records only (Kubernetes ConfigMaps) has its records copied
into the local folder, then deleted; Terraform's state Secrets there are left as they are.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from stagegraph.statelocation import MARKER_OBJECT, StoreObjects, moved_marker, store_objects

if TYPE_CHECKING:
    from stagegraph.statemove import Move

MOVED_DIR = "state-moved"
RETIRED = "retired"


def retire(move: Move) -> list[str]:
    project = move.project
    stamp = move.journal.stamp
    aside = project.state_dir / MOVED_DIR / stamp
    moved = 0
    # Terraform's memory of the old backend (.terraform/terraform.tfstate) would make the next
    # init ask to migrate again: it goes aside with the state.
    for stage in project.graph.stages:
        names = [".terraform/terraform.tfstate"]
        if move.source.where.is_local:
            names += [p.name for p in sorted(project.stage_dir(stage).glob("terraform.tfstate*"))]
        for name in names:
            path = project.stage_dir(stage) / name
            if path.is_file():
                dest = aside / stage.name / name.replace("/", "_")
                dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                shutil.move(str(path), str(dest))
                moved += 1
    lines = []
    objects = store_objects(move.source.view)
    source_store = move.source.view.shared_store
    if source_store is None and project.shared_store is not None:
        # The source's records were this folder's; the target keeps them in its store now.
        records = project.state_dir / "records"
        for path in sorted(records.glob("*.json")) if records.is_dir() else []:
            dest = aside / "records" / path.name
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.move(str(path), str(dest))
            moved += 1
    if source_store is not None and objects is None:
        # A store of records only (Kubernetes ConfigMaps): a copy here, then out of the store.
        from stagegraph.sharedstate.store import record_name

        for stage in project.graph.stages:
            got = source_store.get(record_name(stage.name))
            if got is not None:
                dest = aside / "records" / f"{stage.name}.json"
                dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                dest.write_bytes(got.data)
                source_store.delete(record_name(stage.name), got.version)
                moved += 1
    if moved:
        lines.append(
            f"moved {moved} local file(s) aside into {aside} (old state, records, Terraform's note of "
            "the old backend; delete it when you are sure)"
        )
    if objects is not None:
        count = _retire_objects(move, objects, stamp)
        objects.put(MARKER_OBJECT, moved_marker(move.target.where))
        lines.append(
            f"retired {count} object(s) under {objects.url(f'{RETIRED}/{stamp}/')}; "
            f"{objects.url(MARKER_OBJECT)} names the new place"
        )
    target_objects = store_objects(project)
    if target_objects is not None:
        target_objects.delete(MARKER_OBJECT)  # the state is back: a marker of an earlier move goes
    return lines


def _retire_objects(move: Move, objects: StoreObjects, stamp: str) -> int:
    """Move the source store's state objects and records aside (copy, then delete the original)."""
    count = 0
    for stage in move.project.graph.stages:
        names = [f"records/{stage.name}.json"]
        backend = move.source.backend(stage)
        if backend is not None and move.source.where.backend == "s3":
            from stagegraph.stages.cloud.names import s3_prefix

            body = next(iter(backend["terraform"]["backend"].values()))
            names.append(str(body["key"]).removeprefix(s3_prefix(move.source.where.settings) + "/"))
        for name in names:
            got = objects.get(name)
            if got is None:
                continue
            objects.put(f"{RETIRED}/{stamp}/{name}", got)
            objects.delete(name)
            count += 1
    return count
