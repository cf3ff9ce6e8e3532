"""Records and lock kept where a deployment's Terraform state is (an S3 bucket), for teams.

A deployment whose `terraform_state` is an existing S3 backend keeps, under the backend's
`key` folder, next to each stage's state object:

- `records/<stage>.json`: the record of each stage (`stagegraph.records`), written with one
  PUT (atomic in S3) after the stage's apply returned; so any clone or CI runner knows what
  is applied. Records hold digests and non-secret outputs only, like local records.
- `lock.json`: one deploy at a time across machines. Taken by creating the object with a
  conditional write (`If-None-Match: *`: exactly one creator wins), naming holder, host,
  command and a lease expiry; renewed by the holder (`If-Match: <etag>`, so a holder whose
  lock was taken over notices) every third of the lease; deleted on release. A holder that
  dies stops renewing, so its lock expires and the next run takes it over (again with
  `If-Match`, so two runs cannot both take over the same stale lock).

Chosen over a DynamoDB item: one store, one access policy (a bucket prefix), nothing else to
create; S3 has had conditional writes since 2024, and so has `moto`, which the tests use.
Expiry compares the holder's clock with the taker's: clocks must agree to well within the
lease (NTP does that).

boto3 is imported only here, and this module only inside actions (`doit list` stays fast).
The endpoint comes from boto3's own settings, e.g. `AWS_ENDPOINT_URL_S3`, which Terraform's
S3 backend honours too; `use_path_style` in the backend config is honoured by both.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagegraph.errors import LockHeldError, StagegraphError
from stagegraph.records import RecordError, RecordStore

if TYPE_CHECKING:
    from stagegraph.schema.config import NebariConfig

LOCK_OBJECT = "lock.json"
RECORDS_FOLDER = "records"


@dataclass(frozen=True)
class S3Location:
    """The bucket and folder of a deployment's shared state."""

    bucket: str
    prefix: str
    region: str | None
    path_style: bool

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"


def shared_location(config: NebariConfig) -> S3Location | None:
    """Where records and lock are shared, or None when they stay on this machine."""
    from stagegraph.stages.cloud.names import s3_prefix

    state = config.terraform_state
    if state.type != "existing" or state.backend != "s3":
        return None
    body = state.config
    if not body.get("bucket"):
        raise StagegraphError(
            "terraform_state.config.bucket: an s3 backend needs the bucket that holds the state; set it"
        )
    return S3Location(
        bucket=body["bucket"],
        prefix=s3_prefix(body),
        region=body.get("region"),
        path_style=str(body.get("use_path_style", "")).lower() == "true",
    )


class S3Client:
    """The few S3 calls stagegraph makes, counted (for the benchmark)."""

    def __init__(self, where: S3Location) -> None:
        import boto3
        from botocore.config import Config

        self.where = where
        self.requests = 0
        style = "path" if where.path_style else "auto"
        self._s3 = boto3.client(
            "s3",
            region_name=where.region,
            config=Config(s3={"addressing_style": style}, retries={"max_attempts": 3}),
        )

    def _call(self, op: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError

        self.requests += 1
        try:
            return getattr(self._s3, op)(Bucket=self.where.bucket, **kwargs)
        except BotoCoreError as exc:  # no endpoint, no credentials: not a ClientError
            raise StagegraphError(
                f"{self.where.url('')}: cannot reach the shared state ({exc}); check the "
                "endpoint and credentials (AWS_ENDPOINT_URL_S3, AWS_PROFILE, ...)"
            ) from None

    def get(self, name: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag, None if there is none."""
        from botocore.exceptions import ClientError

        try:
            got = self._call("get_object", Key=self.where.key(name))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._failed("read", name, exc) from None
        return got["Body"].read(), str(got["ETag"])

    def put(
        self, name: str, data: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str | None:
        """Write the object; its new ETag, or None when the condition did not hold."""
        from botocore.exceptions import ClientError

        extra: dict[str, str] = {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        try:
            put = self._call(
                "put_object", Key=self.where.key(name), Body=data, ContentType="application/json", **extra
            )
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409", "NoSuchKey"):
                return None
            raise self._failed("write", name, exc) from None
        return str(put["ETag"])

    def delete(self, name: str, *, if_match: str | None = None) -> bool:
        from botocore.exceptions import ClientError

        extra = {"IfMatch": if_match} if if_match is not None else {}
        try:
            self._call("delete_object", Key=self.where.key(name), **extra)
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "NoSuchKey"):
                return False
            raise self._failed("delete", name, exc) from None
        return True

    def list(self, folder: str) -> list[str]:
        """Names (relative to `folder`) of the objects in it."""
        from botocore.exceptions import ClientError

        names: list[str] = []
        token: str | None = None
        prefix = self.where.key(folder) + "/"
        for _ in range(1000):  # bounded: 1000 pages of 1000 records
            extra = {"ContinuationToken": token} if token else {}
            try:
                page = self._call("list_objects_v2", Prefix=prefix, **extra)
            except ClientError as exc:
                raise self._failed("list", folder, exc) from None
            names += [obj["Key"].removeprefix(prefix) for obj in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                break
        return names

    def _failed(self, what: str, name: str, exc: Exception) -> StagegraphError:
        return StagegraphError(
            f"{self.where.url(name)}: cannot {what} the shared state ({_code(exc)}); check that "
            "these credentials may read and write this bucket folder (see README, shared state)"
        )


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) or str(
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


class S3RecordStore(RecordStore):
    """Records as objects `records/<stage>.json` in the shared folder; no local copy is trusted."""

    def __init__(self, client: S3Client) -> None:
        super().__init__(Path(client.where.url("")))
        self.client = client

    def path(self, stage: str) -> Path:
        super().path(stage)  # checks the name
        return Path(self.client.where.url(f"{RECORDS_FOLDER}/{stage}.json"))

    def get(self, stage: str) -> Any:
        self.path(stage)
        got = self.client.get(f"{RECORDS_FOLDER}/{stage}.json")
        return None if got is None else self._parse(self.path(stage), stage, got[0])

    def scan(self) -> tuple[dict[str, Any], dict[str, RecordError]]:
        records: dict[str, Any] = {}
        problems: dict[str, RecordError] = {}
        for name in sorted(self.client.list(RECORDS_FOLDER)):
            stage = name.removesuffix(".json")
            if not name.endswith(".json") or "/" in name:
                continue
            try:
                record = self.get(stage)
            except RecordError as exc:
                problems[stage] = exc
                continue
            if record is not None:
                records[stage] = record
        return records, problems

    def _write(self, path: Path, data: str) -> None:
        stage = path.name.removesuffix(".json")
        self.client.put(f"{RECORDS_FOLDER}/{stage}.json", data.encode())

    def delete(self, stage: str) -> bool:
        self.path(stage)
        return self.client.delete(f"{RECORDS_FOLDER}/{stage}.json")


@dataclass(frozen=True)
class Lease:
    lease_s: float
    wait_s: float


class S3Lock:
    """The deployment's lock object: held by one process on any machine, renewed while it lives."""

    def __init__(self, client: S3Client, command: str, lease: Lease) -> None:
        self.client = client
        self.command = command
        self.lease = lease
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    def _body(self) -> bytes:
        from stagegraph.projectlock import LockHolder

        holder = LockHolder.current(self.command)
        expires = datetime.fromtimestamp(time.time() + self.lease.lease_s, UTC)
        return (
            json.dumps(
                {
                    "pid": holder.pid,
                    "host": holder.host,
                    "user": holder.user,
                    "command": holder.command,
                    "since": holder.since,
                    "expires": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                },
                indent=2,
            ).encode()
            + b"\n"
        )

    def acquire(self) -> None:
        """Take the lock, waiting up to the lease's wait for a holder to finish or expire."""
        deadline = time.monotonic() + self.lease.wait_s
        while True:
            etag = self.client.put(LOCK_OBJECT, self._body(), if_none_match=True)
            if etag is not None:
                break
            current = self.client.get(LOCK_OBJECT)
            if current is not None and _expired(current[0]):
                # Take over a dead holder's lock, only if nobody did in the meantime.
                etag = self.client.put(LOCK_OBJECT, self._body(), if_match=current[1])
                if etag is not None:
                    break
            if time.monotonic() >= deadline:
                raise LockHeldError(_held_message(self.client, current, self.lease.wait_s))
            time.sleep(min(1.0, max(0.05, self.lease.wait_s / 20)))
        self._etag = etag
        self._thread = threading.Thread(target=self._renew, name="stagegraph-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease.lease_s / 3):
            try:
                etag = self.client.put(LOCK_OBJECT, self._body(), if_match=self._etag)
            except StagegraphError as exc:  # the next renewal may get through
                self.lost = str(exc)
                continue
            if etag is None:
                self.lost = f"{self.client.where.url(LOCK_OBJECT)}: the lock was taken over"
                return
            self._etag = etag

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._etag is not None and self.lost is None:
            self.client.delete(LOCK_OBJECT, if_match=self._etag)
        self._etag = None


def _expired(body: bytes) -> bool:
    try:
        expires = datetime.strptime(json.loads(body)["expires"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (ValueError, KeyError, TypeError):
        return True  # unreadable: a torn or foreign object, not a live holder's
    return datetime.now(UTC) >= expires


def _held_message(client: S3Client, current: tuple[bytes, str] | None, waited: float) -> str:
    where = client.where.url(LOCK_OBJECT)
    try:
        data = json.loads(current[0]) if current else {}
        who = (
            f"{data['command']!r} by {data['user']}@{data['host']} pid {data['pid']} since "
            f"{data['since']} (lease until {data['expires']})"
        )
    except (ValueError, KeyError, TypeError):
        who = "a run that did not say who it is"
    return (
        f"another stagegraph run holds the shared lock {where}: {who}; waited {waited:g}s; "
        "run again when it has finished (a dead holder's lock expires with its lease)"
    )


def refuse_local_records(state_dir: Path, client: S3Client) -> None:
    """Refuse a deployment whose records are on this machine while its config says S3.

    The shared store would look empty, and a deploy would apply every stage again against an
    empty remote state: duplicates of everything. Moving state has to be done on purpose.
    """
    local = state_dir / RECORDS_FOLDER
    found = sorted(local.glob("*.json")) if local.is_dir() else []
    if found:
        raise StagegraphError(
            f"{local}: {len(found)} deploy records are on this machine, but terraform_state says the "
            f"state is in {client.where.url('')}; stagegraph cannot move state yet: put "
            "terraform_state back, or move the state and records by hand (README, shared state)"
        )


_held_locks: dict[str, S3Lock] = {}
_guard = threading.Lock()


def hold_shared_lock(client: S3Client, command: str, lease: Lease) -> S3Lock:
    """Take the shared lock once per process and keep it until the process exits."""
    import atexit

    key = client.where.url(LOCK_OBJECT)
    with _guard:
        lock = _held_locks.get(key)
        if lock is None:
            lock = S3Lock(client, command, lease)
            lock.acquire()
            _held_locks[key] = lock
            atexit.register(lock.release)
        return lock
