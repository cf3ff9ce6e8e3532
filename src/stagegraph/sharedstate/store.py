"""The one interface every shared-state store offers: small objects with conditional writes.

The lock (`sharedstate.lock`) and the records (`sharedstate.records`) are written once,
against this interface, and each store (S3 objects, Kubernetes ConfigMaps and a Lease)
implements it. Every write names the version it read (an S3 ETag, a Kubernetes
resourceVersion), so two machines can never both believe they won: exactly one of two
conditional writes against the same version succeeds.

Names are paths relative to the deployment's folder in the store: `lock.json` and
`records/<stage>.json`. A store maps them onto its own objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

LOCK_OBJECT = "lock.json"
RECORDS_FOLDER = "records"


def record_name(stage: str) -> str:
    return f"{RECORDS_FOLDER}/{stage}.json"


@dataclass(frozen=True)
class Versioned:
    """An object's bytes and the version a conditional write must name."""

    data: bytes
    version: str


class ConditionalStore(ABC):
    """Get with version, create if absent, replace or delete only at a version, list."""

    #: Requests sent so far (the benchmark counts them: against a real store they cost
    #: latency and money, not just CPU).
    requests: int = 0

    def exists(self) -> bool:
        """Whether the store itself (bucket, container) is there. A store that exists before
        any stage (a cluster, a backend the user runs) always is; the ones a cloud's stage 01
        creates answer for themselves (`sharedstate.bootstrap`). Raises on any other failure
        (no network, no credentials, a bucket name another account owns)."""
        return True

    @abstractmethod
    def describe(self, name: str = "") -> str:
        """Where `name` lives, as a user can look it up (`s3://bucket/key`, `configmap ns/name`)."""

    @abstractmethod
    def get(self, name: str) -> Versioned | None:
        """The object and its version; None when there is none."""

    @abstractmethod
    def create(self, name: str, data: bytes) -> str | None:
        """Create the object; its version, or None when it exists already."""

    @abstractmethod
    def replace(self, name: str, data: bytes, version: str) -> str | None:
        """Overwrite the object if it is still at `version`; its new version, or None."""

    @abstractmethod
    def delete(self, name: str, version: str | None = None) -> bool:
        """Delete the object (only at `version` when given); False when it was not there or moved."""

    @abstractmethod
    def list(self, folder: str) -> list[str]:
        """Names, relative to `folder`, of the objects in it."""
