"""A small HTTP client for registry lookups: time-outs, retries with back-off, clear errors.

The standard library's urllib is enough for a few dozen GETs a quarter, so there is no
`requests` dependency. What it adds over urlopen:

- every failure becomes a one-line `RegistryError` naming the pin key and the host;
- connection errors, time-outs, HTTP 5xx and short rate limits are retried with
  exponential back-off (a rate limit that asks for a long wait fails at once, saying how
  long, rather than hanging a CI job);
- `Authorization` is never forwarded across a redirect (OCI blobs redirect to storage
  that rejects a second credential);
- it is safe to share between the threads of one bump (lookups run in parallel).

Import this module only inside functions: `doit list` must not pay for urllib/ssl.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stagegraph.pins.errors import (
    RegistryError,
    RegistryNotFoundError,
    RegistryOfflineError,
    RegistryRateLimitedError,
    RegistryServerError,
)

USER_AGENT = "stagegraph-pins (+https://github.com/nebari-dev)"
#: A Helm index of a big repository is tens of MB; refuse anything far beyond that.
MAX_BODY = 256 * 1024 * 1024


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self, key: str) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise RegistryServerError(
                key, host_of(self.url), f"answer from {path_of(self.url)} is not JSON; retry later"
            ) from None


def host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def path_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def retry_after_seconds(value: str, now: datetime | None = None) -> int | None:
    """`Retry-After` as seconds: either a number or an HTTP date."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0, int((when - now).total_seconds() + 0.999))


class HttpClient:
    """GET/HEAD with retries. `sleep` is injectable so tests do not wait for back-off."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        # urllib follows redirects and drops headers added with add_unredirected_header.
        self._opener = urllib.request.build_opener()
        #: The first lookup that could not reach its registry: later lookups do not try
        #: (with no network, 30 pins would each wait for their own time-outs).
        self.unreachable: RegistryOfflineError | None = None

    def get(
        self,
        url: str,
        *,
        key: str,
        headers: Mapping[str, str] | None = None,
        auth: str | None = None,
        method: str = "GET",
        accept: Collection[int] = (),
        not_found: str | None = None,
    ) -> Response:
        """One request with retries.

        Returns 2xx answers and those whose status is in `accept` (say 401 for a token
        challenge, 404 for an existence check). A 404 otherwise raises
        `RegistryNotFoundError` with "404: <not_found>" (or the path).
        """
        if self.unreachable is not None:
            raise RegistryOfflineError(key, self.unreachable.host, self.unreachable.problem)
        attempts = self.retries + 1
        last: RegistryError | None = None
        for attempt in range(attempts):
            if attempt:
                self.sleep(self._delay(attempt, last))
            try:
                return self._once(url, key, headers, auth, method, accept, not_found)
            except _Retry as retry:
                last = retry.error
                if retry.wait is not None and retry.wait > self.max_retry_after:
                    raise retry.error from None
        assert last is not None
        if isinstance(last, RegistryOfflineError) and self.unreachable is None:
            self.unreachable = last
        raise last

    def _delay(self, attempt: int, last: RegistryError | None) -> float:
        wait: float = self.backoff * 2.0 ** (attempt - 1)
        if isinstance(last, RegistryRateLimitedError) and last.retry_after is not None:
            wait = max(wait, float(last.retry_after))
        return wait

    def _once(
        self,
        url: str,
        key: str,
        headers: Mapping[str, str] | None,
        auth: str | None,
        method: str,
        accept: Collection[int],
        not_found: str | None,
    ) -> Response:
        host = host_of(url)
        request = urllib.request.Request(url, method=method)  # noqa: S310 - http(s) URLs built here
        request.add_header("User-Agent", USER_AGENT)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if auth:
            request.add_unredirected_header("Authorization", auth)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                body = answer.read(MAX_BODY + 1)
                status = answer.status
                got = {k.lower(): v for k, v in answer.headers.items()}
                final = answer.geturl()
        except urllib.error.HTTPError as exc:
            with exc:
                status = exc.code
                got = {k.lower(): v for k, v in (exc.headers or {}).items()}
                try:
                    body = exc.read(64 * 1024)
                except (OSError, ValueError):
                    body = b""
            final = exc.url or url
        except TimeoutError:
            raise _Retry(
                RegistryOfflineError(
                    key,
                    host,
                    f"no answer within {self.timeout:g} s after {self.retries + 1} tries; "
                    "offline? retry later",
                )
            ) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                problem = f"no answer within {self.timeout:g} s after {self.retries + 1} tries"
            else:
                problem = f"cannot connect ({_reason(reason)})"
            raise _Retry(RegistryOfflineError(key, host, f"{problem}; offline? retry later")) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retry(
                RegistryOfflineError(key, host, f"connection failed ({_reason(exc)}); offline? retry later")
            ) from None
        if len(body) > MAX_BODY:
            raise RegistryServerError(key, host, f"{path_of(url)} is larger than {MAX_BODY} bytes")
        response = Response(final, status, got, body)
        if 200 <= status < 300 or status in accept:
            return response
        limited = status == 429 or (status == 403 and got.get("x-ratelimit-remaining") == "0")
        if limited:
            wait = retry_after_seconds(got.get("retry-after", ""))
            if wait is None and got.get("x-ratelimit-reset", "").isdigit():
                wait = max(0, int(got["x-ratelimit-reset"]) - int(time.time()))
            raise _Retry(RegistryRateLimitedError(key, host, wait), wait)
        if status == 404:
            raise RegistryNotFoundError(key, host, f"404: {not_found or path_of(url)}")
        if status >= 500:
            raise _Retry(
                RegistryServerError(
                    key,
                    host,
                    f"HTTP {status} from {path_of(url)} after {self.retries + 1} tries; retry later",
                )
            )
        raise RegistryError(key, host, f"HTTP {status} from {path_of(url)}; check the pin and the registry")


class _Retry(Exception):
    def __init__(self, error: RegistryError, wait: int | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
