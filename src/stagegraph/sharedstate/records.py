"""Deploy records kept in the shared store, next to the Terraform state they describe.

Each stage's record (`stagegraph.records.StageRecord`: fingerprint, input digests,
non-secret outputs, times, runner) is one object `records/<stage>.json`, written in one
conditional write after the stage's apply returned, so any clone or CI runner knows what is
applied. No local copy is trusted. A write names the version this run last saw, so a run
whose lock was taken over cannot silently overwrite the record the new holder wrote.
"""

from __future__ import annotations

import threading
from pathlib import Path

from stagegraph.errors import StagegraphError
from stagegraph.records import RecordError, RecordStore, StageRecord
from stagegraph.sharedstate.store import RECORDS_FOLDER, ConditionalStore, record_name


class SharedRecordError(RecordError):
    """A shared record that cannot be read; named by the store's own words, not as a file."""

    def __init__(self, where: str, stage: str, problem: str) -> None:
        StagegraphError.__init__(
            self,
            f"{where}: unreadable deploy record ({problem}); delete it to make the next deploy "
            f"re-apply stage {stage} (terraform state is kept, so the re-apply is safe)",
        )
        self.path = Path(where)
        self.problem = problem


class SharedRecordStore(RecordStore):
    """Records as objects of a `ConditionalStore`."""

    def __init__(self, store: ConditionalStore) -> None:
        super().__init__(Path(store.describe("")))
        self.store = store
        #: stage -> the version of its record this run last read or wrote (None: absent).
        self._seen: dict[str, str | None] = {}
        self._seen_lock = threading.Lock()
        #: str(path(stage)) -> stage (a store's description need not end in the stage name).
        self._stages: dict[str, str] = {}

    def path(self, stage: str) -> Path:
        """What messages name the record by; `_write` maps it back to the stage."""
        super().path(stage)  # checks the name
        path = Path(self.store.describe(record_name(stage)))
        with self._seen_lock:
            self._stages[str(path)] = stage
        return path

    def get(self, stage: str) -> StageRecord | None:
        self.path(stage)
        got = self.store.get(record_name(stage))
        with self._seen_lock:
            self._seen[stage] = None if got is None else got.version
        if got is None:
            return None
        try:
            return self._parse(self.path(stage), stage, got.data)
        except RecordError as exc:
            raise SharedRecordError(self.store.describe(record_name(stage)), stage, exc.problem) from None

    def scan(self) -> tuple[dict[str, StageRecord], dict[str, RecordError]]:
        records: dict[str, StageRecord] = {}
        problems: dict[str, RecordError] = {}
        for name in sorted(self.store.list(RECORDS_FOLDER)):
            stage = name.removesuffix(".json")
            if not name.endswith(".json") or "/" in name:
                continue
            try:
                record = self.get(stage)
            except RecordError as exc:
                problems[stage] = exc
                continue
            except StagegraphError:
                continue  # not a stage name this tool writes
            if record is not None:
                records[stage] = record
        return records, problems

    def _write(self, path: Path, data: str) -> None:
        with self._seen_lock:
            stage = self._stages[str(path)]
        name = record_name(stage)
        with self._seen_lock:
            known = stage in self._seen
            version = self._seen.get(stage)
        if not known:  # never read in this run: learn its version first
            got = self.store.get(name)
            version = None if got is None else got.version
        written = (
            self.store.create(name, data.encode())
            if version is None
            else self.store.replace(name, data.encode(), version)
        )
        if written is None:
            raise StagegraphError(
                f"{self.store.describe(name)}: another run changed this record while this run held "
                "the shared lock; its lock was lost: run `doit status` to see what is applied, then deploy again"
            )
        with self._seen_lock:
            self._seen[stage] = written

    def delete(self, stage: str) -> bool:
        self.path(stage)
        with self._seen_lock:
            self._seen[stage] = None
        return self.store.delete(record_name(stage))
