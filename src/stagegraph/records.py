"""Deploy records: the source of truth of what is deployed, one JSON file per stage.

doit's database is not trusted for deploy state (a run killed by SIGTERM/SIGKILL loses
every record of it, and two runs can race), so each stage's outcome is written here,
atomically, the moment terraform returns. A stage is up to date when the fingerprint of
its current inputs equals `fingerprint`, which always belongs to the last SUCCESSFUL
apply: a failed attempt keeps it, so a failed stage is retried until it succeeds and
staleness is judged against what is really deployed.

Files: `<root>/records/<stage>.json`, mode 0600 (outputs are not secret, but they describe
the infrastructure, and nobody else on the machine needs them).
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from stagegraph.atomic import remove_if_exists, write_atomic
from stagegraph.errors import StagegraphError
from stagegraph.tfstate import StateIdentity

RECORDS_DIR = "records"
RECORD_MODE = 0o600

#: Stage names become file names: keep them to one safe path component.
_STAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class PlanInfo(BaseModel):
    """A saved `terraform plan` for a stage, and what it was made against."""

    model_config = ConfigDict(extra="forbid")

    path: str
    fingerprint: str
    used_mock: bool
    created_at: datetime
    #: Upstream stages with an output this plan needed that was known only after they
    #: apply: the plan stood in their recorded values, so it cannot be applied as is.
    deferred_on: list[str] = []


class StageRecord(BaseModel):
    """What is known about one stage's deployment."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    status: Literal["applied", "failed", "destroyed"]
    #: Fingerprint of the inputs of the last successful apply (None: never applied, or
    #: destroyed since).
    fingerprint: str | None
    #: Input name -> digest at the last successful apply; `why <stage>` diffs against it.
    inputs: dict[str, str]
    #: Typed outputs of the last successful apply, as JSON. Never secrets.
    outputs: dict[str, Any]
    applied_at: datetime | None
    attempted_at: datetime
    duration_s: float | None
    #: One line, for `status` and the failure summary.
    error: str | None
    log: str | None
    runner: str | None
    #: Digest of providers + backend at the last successful `terraform init`.
    init_digest: str | None
    plan: PlanInfo | None
    #: Values of the immutable fields (`stagegraph.immutable`) at the last successful apply.
    immutable: dict[str, Any] = {}
    #: The local Terraform state the last successful apply left (None: none to check,
    #: such as a remote backend, or a record older than this field).
    state: StateIdentity | None = None
    #: Who brought the stage ("stagegraph" or a plugin's name), so that a stage which left
    #: the graph can say which plugin to enable again. None in records of older releases.
    source: str | None = None


class RecordError(StagegraphError):
    """A record file exists but cannot be read or understood."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        stage = path.name.removesuffix(".json")
        super().__init__(
            f"{path}: unreadable deploy record ({problem}); delete this file to make the next "
            f"deploy re-apply stage {stage} (terraform state is kept, so the re-apply is safe)"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first or "failed (no message)"


class RecordStore:
    """Per-stage records under `<root>/records/`; safe to share between doit's threads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.directory = root / RECORDS_DIR
        # Each stage writes only its own file and every write is atomic, so this lock
        # only serialises read-modify-write helpers (record_failure on one stage from
        # two threads) - cheap, and it keeps the invariants easy to reason about.
        self._lock = threading.Lock()

    # --- paths ----------------------------------------------------------------------------

    def path(self, stage: str) -> Path:
        if not _STAGE_NAME.match(stage):
            raise StagegraphError(
                f"stage name {stage!r} cannot name a record file; use letters, digits, "
                "'-', '_' and '.' (not first)"
            )
        return self.directory / f"{stage}.json"

    # --- reading --------------------------------------------------------------------------

    def _load(self, path: Path, stage: str) -> StageRecord:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RecordError(path, exc.strerror or type(exc).__name__) from None
        return self._parse(path, stage, raw)

    @staticmethod
    def _parse(path: Path, stage: str, raw: bytes) -> StageRecord:
        try:
            record = StageRecord.model_validate_json(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise RecordError(path, f"{where + ': ' if where else ''}{err['msg']}") from None
        if record.stage != stage:
            raise RecordError(path, f"it is the record of stage {record.stage!r}")
        return record

    def get(self, stage: str) -> StageRecord | None:
        """The record of `stage`, None if it never ran; `RecordError` if it is corrupt."""
        path = self.path(stage)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RecordError(path, exc.strerror or type(exc).__name__) from None
        return self._parse(path, stage, raw)

    def scan(self) -> tuple[dict[str, StageRecord], dict[str, RecordError]]:
        """Every record, and separately every record that could not be read.

        For status views, which must show what they can rather than fail on one bad file.
        """
        records: dict[str, StageRecord] = {}
        problems: dict[str, RecordError] = {}
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            paths = []
        for path in paths:
            stage = path.name.removesuffix(".json")
            try:
                records[stage] = self._load(path, stage)
            except RecordError as exc:
                problems[stage] = exc
        return records, problems

    def all(self) -> dict[str, StageRecord]:
        """Every record by stage name; raises the first `RecordError` (for deploys)."""
        records, problems = self.scan()
        if problems:
            raise next(iter(problems.values()))
        return records

    # --- writing --------------------------------------------------------------------------

    def put(self, record: StageRecord) -> None:
        path = self.path(record.stage)
        data = record.model_dump_json(indent=2) + "\n"
        with self._lock:
            self._write(path, data)

    def _write(self, path: Path, data: str) -> None:
        try:
            write_atomic(path, data, RECORD_MODE)
        except OSError as exc:
            raise StagegraphError(
                f"{path}: cannot write the deploy record ({exc.strerror or exc}); the stage "
                "will be re-applied on the next deploy once this is fixed"
            ) from None

    def delete(self, stage: str) -> bool:
        with self._lock:
            return remove_if_exists(self.path(stage))

    def record_success(
        self,
        stage: str,
        *,
        fingerprint: str,
        inputs: dict[str, str],
        outputs: dict[str, Any],
        attempted_at: datetime,
        duration_s: float | None = None,
        log: str | Path | None = None,
        runner: str | None = None,
        init_digest: str | None = None,
        applied_at: datetime | None = None,
        immutable: dict[str, Any] | None = None,
        state: StateIdentity | None = None,
        source: str | None = None,
    ) -> StageRecord:
        """Write the record of a successful apply (any saved plan is spent by it)."""
        record = StageRecord(
            stage=stage,
            status="applied",
            fingerprint=fingerprint,
            inputs=dict(inputs),
            outputs=dict(outputs),
            applied_at=applied_at or _now(),
            attempted_at=attempted_at,
            duration_s=None if duration_s is None else round(duration_s, 3),
            error=None,
            log=None if log is None else str(log),
            runner=runner,
            init_digest=init_digest,
            plan=None,
            immutable=dict(immutable or {}),
            state=state,
            source=source,
        )
        self.put(record)
        return record

    def record_failure(
        self,
        stage: str,
        error: str,
        log: str | Path | None,
        *,
        attempted_at: datetime | None = None,
        duration_s: float | None = None,
    ) -> StageRecord:
        """Mark `stage` failed, keeping the fingerprint, inputs and outputs of its last success.

        Keeping them means the next deploy still compares against what is really deployed
        (the failed attempt may have changed nothing), and downstream `why` stays useful.
        A record that cannot be read is replaced (the failure is what matters now).
        """
        with self._lock:
            try:
                previous = self.get(stage)
            except RecordError:
                previous = None
            fields: dict[str, Any] = (
                previous.model_dump()
                if previous is not None
                else {
                    "stage": stage,
                    "fingerprint": None,
                    "inputs": {},
                    "outputs": {},
                    "applied_at": None,
                    "runner": None,
                    "init_digest": None,
                    "plan": None,
                    "duration_s": None,
                }
            )
            fields.update(
                status="failed",
                attempted_at=attempted_at or _now(),
                error=_one_line(error),
                log=None if log is None else str(log),
            )
            if duration_s is not None:
                fields["duration_s"] = round(duration_s, 3)
            record = StageRecord.model_validate(fields)
            self._write(self.path(stage), record.model_dump_json(indent=2) + "\n")
        return record

    def record_destroyed(
        self,
        stage: str,
        *,
        attempted_at: datetime | None = None,
        duration_s: float | None = None,
        log: str | Path | None = None,
    ) -> StageRecord:
        """Mark `stage` destroyed: no fingerprint (the next deploy applies it), no outputs.

        The inputs of the last apply are kept so `why` can still say what it was built from.
        """
        with self._lock:
            try:
                previous = self.get(stage)
            except RecordError:
                previous = None
            record = StageRecord(
                stage=stage,
                status="destroyed",
                fingerprint=None,
                inputs=dict(previous.inputs) if previous else {},
                outputs={},
                applied_at=previous.applied_at if previous else None,
                attempted_at=attempted_at or _now(),
                duration_s=None if duration_s is None else round(duration_s, 3),
                error=None,
                log=None if log is None else str(log),
                runner=previous.runner if previous else None,
                init_digest=previous.init_digest if previous else None,
                plan=None,
                source=previous.source if previous else None,
            )
            self._write(self.path(stage), record.model_dump_json(indent=2) + "\n")
        return record
