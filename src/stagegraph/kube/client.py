"""A thin client for the Kubernetes API, built from a kubeconfig file and context.

Only this module touches the `kubernetes` package, and only inside functions: importing
its API classes takes seconds, and every doit command (`doit list` included) imports the
stage modules. The client speaks raw JSON over the `ApiClient` (auth, TLS, exec plugins
and proxies all come from the kubeconfig as kubectl would read them), because the few
calls stagegraph makes (server-side apply, get, list, delete, version) need no typed
models.

Errors are one line: the method, the path and the API server's own message. Headers and
bodies we send never appear in them (a kubeconfig token, a manifest's data).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stagegraph.errors import DeployError

#: (connect, read) seconds for one request; a hung API server must not hang a deploy.
REQUEST_TIMEOUT = (10.0, 60.0)


class KubeError(DeployError):
    """The cluster could not be reached or configured (kubeconfig, network, TLS)."""


class KubeApiError(KubeError):
    """The API server answered with an error status (404, 409, 422, ...)."""

    def __init__(self, method: str, path: str, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.api_message = message
        detail = f"{reason}: {message}" if message else reason
        super().__init__(f"{method} {path}: {status} {detail}".rstrip())


@dataclass(frozen=True)
class KubeTarget:
    """Where to find the cluster: the same two values the Terraform stages get."""

    kubeconfig_path: str
    context: str | None = None

    def describe(self) -> str:
        return f"kubeconfig {self.kubeconfig_path}" + (f", context {self.context}" if self.context else "")


class KubeClient:
    """JSON requests against one API server."""

    def __init__(self, api_client: Any, access: KubeTarget) -> None:
        self._api = api_client
        self.access = access

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API call; the decoded JSON answer, or KubeApiError / KubeError."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            _, url, headers, body, _ = self._api.param_serialize(
                method,
                path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(method, url, headers, body, _request_timeout=REQUEST_TIMEOUT)
            response.read()
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(
                f"cannot reach the Kubernetes API at {self.host} ({self.access.describe()}): "
                f"{_first_line(exc)}; check that the cluster is up and the kubeconfig is current"
            ) from None
        except ApiException as exc:
            # Raised by the REST layer itself, before any answer: TLS failures (status 0).
            raise KubeError(
                f"{method} {self.host}{path}: {_first_line(exc)} ({self.access.describe()})"
            ) from None
        data: bytes = response.data or b""
        status = int(response.status)
        decoded = _decode(data)
        if not 200 <= status <= 299:
            reason = str(decoded.get("reason") or response.reason or "")
            message = str(decoded.get("message") or "")
            raise KubeApiError(method, path, status, reason, message)
        return decoded

    def close(self) -> None:
        self._api.close()


def _decode(data: bytes) -> dict[str, Any]:
    if not data:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def api_client(access: KubeTarget) -> Any:
    """A `kubernetes.client.ApiClient` for the kubeconfig and context (never the default one)."""
    path = Path(access.kubeconfig_path).expanduser()
    context = access.context or "the current context"
    if not path.is_file():
        # The path is the one 02-infrastructure recorded when it was applied (kind writes
        # it; for `existing` it is where the kubeconfig was found then).
        raise KubeError(
            f"{access.kubeconfig_path}: kubeconfig file not found (context {context}), the one "
            "02-infrastructure recorded at its last apply; restore it, or re-apply 02-infrastructure "
            "(`doit 02-infrastructure`) to find it again (existing: existing.kubeconfig, else KUBECONFIG, "
            "else ~/.kube/config)"
        )
    import yaml
    from kubernetes import config as kube_config
    from kubernetes.client import ApiClient, Configuration

    configuration = Configuration()
    load: Any = kube_config.load_kube_config  # untyped in the client's stubs
    try:
        load(
            config_file=str(path),
            context=access.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (kube_config.ConfigException, yaml.YAMLError) as exc:
        raise KubeError(
            f"{access.kubeconfig_path} (context {context}): {_first_line(exc)}; fix the kubeconfig "
            "or existing.kube_context"
        ) from None
    return ApiClient(configuration=configuration)


@contextmanager
def connect(access: KubeTarget) -> Iterator[KubeClient]:
    """A client for the duration of a `with` block; its connection pool is closed after."""
    client = KubeClient(api_client(access), access)
    try:
        yield client
    finally:
        client.close()
