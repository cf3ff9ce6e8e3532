"""The S3 store of shared state: objects under the backend's `key` folder in the bucket.

Next to each stage's state object Terraform's S3 backend writes, stagegraph keeps
`records/<stage>.json` and `lock.json` (`sharedstate.records`, `sharedstate.lock`). S3 has
had conditional writes since 2024 (`If-None-Match: *` creates only if absent, `If-Match:
<etag>` overwrites only that version), and so has `moto`, which the tests use: one store,
one access policy (a bucket prefix), nothing else to create, where a DynamoDB item would
need a table too.

boto3 is imported only inside methods, and this module only inside actions (`doit list`
stays fast). The endpoint comes from boto3's own settings, e.g. `AWS_ENDPOINT_URL_S3`,
which Terraform's S3 backend honours too; `use_path_style` in the backend config is
honoured by both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stagegraph.errors import StagegraphError
from stagegraph.sharedstate.store import ConditionalStore, Versioned

if TYPE_CHECKING:
    from stagegraph.schema.config import NebariConfig


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


def s3_location(config: NebariConfig) -> S3Location:
    """The folder of an `existing` S3 backend: the one its `key` names."""
    from stagegraph.stages.cloud.names import s3_prefix

    body = config.terraform_state.config
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


#: Answers that mean "the condition did not hold" (moto and AWS differ a little).
_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


class S3Client(ConditionalStore):
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

    def describe(self, name: str = "") -> str:
        return self.where.url(name)

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

    def exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._call("head_bucket")
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return False
            if _code(exc) in ("403", "AccessDenied"):
                # Bucket names are global: this one may be another account's.
                raise StagegraphError(
                    f"{self.where.url('')}: the bucket exists but these credentials may not use it "
                    "(403); if another account owns the name, change project_name or namespace"
                ) from None
            raise self._failed("read", "", exc) from None
        return True

    def get(self, name: str) -> Versioned | None:
        from botocore.exceptions import ClientError

        try:
            got = self._call("get_object", Key=self.where.key(name))
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._failed("read", name, exc) from None
        return Versioned(got["Body"].read(), str(got["ETag"]))

    def _put(self, name: str, data: bytes, **condition: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            put = self._call(
                "put_object", Key=self.where.key(name), Body=data, ContentType="application/json", **condition
            )
        except ClientError as exc:
            if _code(exc) in (*_CONFLICT, "NoSuchKey"):
                return None
            raise self._failed("write", name, exc) from None
        return str(put["ETag"])

    def create(self, name: str, data: bytes) -> str | None:
        return self._put(name, data, IfNoneMatch="*")

    def replace(self, name: str, data: bytes, version: str) -> str | None:
        return self._put(name, data, IfMatch=version)

    def delete(self, name: str, version: str | None = None) -> bool:
        from botocore.exceptions import ClientError

        extra = {"IfMatch": version} if version is not None else {}
        try:
            self._call("delete_object", Key=self.where.key(name), **extra)
        except ClientError as exc:
            if _code(exc) in (*_CONFLICT, "NoSuchKey"):
                return False
            raise self._failed("delete", name, exc) from None
        return True

    def list(self, folder: str) -> list[str]:
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
