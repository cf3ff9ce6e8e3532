"""Errors of registry lookups, bumps and pin checks.

Each message is one line that names the pin key, the registry host and what to do next,
so a failed quarterly bump in CI can be acted on without reading a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

from stagegraph.errors import StagegraphError


class RegistryError(StagegraphError):
    """A registry could not answer a lookup for one pin."""

    def __init__(self, key: str, host: str, problem: str) -> None:
        self.key = key
        self.host = host
        self.problem = problem
        super().__init__(f"{key}: {host}: {problem}")


class RegistryOfflineError(RegistryError):
    """No connection, DNS failure, or no answer within the time-out (after retries)."""


class RegistryUnreachableError(StagegraphError):
    """The network or a registry could not be reached: the whole batch stops, in one line."""

    def __init__(self, first: RegistryOfflineError, action: str, outcome: str) -> None:
        self.first = first
        super().__init__(
            f"{action}: cannot reach {first.host} ({first.problem.split('; ')[0]}); stopped at the "
            f"first unreachable registry, {outcome}; check the network (or a proxy) and re-run"
        )


class RegistryNotFoundError(RegistryError):
    """HTTP 404 on something the lookup needs (a repository, an index, a package)."""


class RegistryRateLimitedError(RegistryError):
    """HTTP 429 (or 403 with an exhausted rate limit) with a wait too long to sit out."""

    def __init__(self, key: str, host: str, retry_after: int | None) -> None:
        self.retry_after = retry_after
        wait = f"retry after {retry_after} s" if retry_after is not None else "retry later"
        super().__init__(key, host, f"rate limited: {wait}")


class RegistryServerError(RegistryError):
    """HTTP 5xx on every try, or an answer that is not the format the registry documents."""


class LookupFailedError(StagegraphError):
    """One or more lookups failed (so nothing was written). One line per failed pin."""

    def __init__(self, errors: Sequence[RegistryError], action: str, outcome: str) -> None:
        self.errors = list(errors)
        lines = [str(e) for e in self.errors]
        lines.append(f"{action}: {len(self.errors)} lookup(s) failed; {outcome}")
        super().__init__("\n".join(lines))


class PinsMissingError(StagegraphError):
    """`verify_pins` found pinned versions that no longer exist upstream."""

    def __init__(self, report: str, missing: int) -> None:
        self.missing = missing
        super().__init__(report)


class PinsArgumentError(StagegraphError):
    """A bad `--group` or `--date` for `doit bump` / `doit verify_pins`."""
