"""The GCS store of shared state: objects next to the state, under the backend's prefix.

Terraform's gcs backend keeps a stage's state in `<prefix>/default.tfstate`; stagegraph
keeps `records/<stage>.json` and `lock.json` in the folder above the stages' prefixes
(`GCSLocation.prefix`). Conditional writes are GCS preconditions: `ifGenerationMatch=0`
creates only if absent, `ifGenerationMatch=<generation>` replaces or deletes only that
generation, and a precondition that does not hold is a 412.

Plain HTTP on the GCS JSON API through `google-auth`'s authorized session (the
google-cloud-storage client would bring protobuf and gRPC libraries along, for five
calls). Credentials are found as Terraform's gcs backend finds them: `access_token` /
GOOGLE_OAUTH_ACCESS_TOKEN, else `credentials` / GOOGLE_BACKEND_CREDENTIALS /
GOOGLE_CREDENTIALS (a key file's path or its JSON), else Application Default Credentials;
`impersonate_service_account` / GOOGLE_BACKEND_IMPERSONATE_SERVICE_ACCOUNT on top.
`storage_custom_endpoint` / GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT name another endpoint
(Private Service Connect, or the tests' fake). google-auth is imported only inside methods.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stagegraph.errors import StagegraphError
from stagegraph.sharedstate.store import ConditionalStore, Versioned

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

    from stagegraph.schema.config import NebariConfig

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
#: Read and write objects: what the records and lock need (no bucket administration).
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
_TIMEOUT = (10, 60)


@dataclass(frozen=True)
class GCSLocation:
    """The bucket and folder of a deployment's shared state, and how to reach it."""

    bucket: str
    prefix: str
    #: The backend's settings (credentials, endpoint); never rendered into messages.
    settings: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def url(self, name: str) -> str:
        return f"gs://{self.bucket}/{self.key(name)}"

    def setting(self, name: str, *env: str, environ: Mapping[str, str] | None = None) -> str:
        environ = os.environ if environ is None else environ
        value = dict(self.settings).get(name, "")
        return value or next((environ[e] for e in env if environ.get(e)), "")

    def endpoint(self) -> str:
        custom = self.setting(
            "storage_custom_endpoint",
            "GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT",
            "GOOGLE_STORAGE_CUSTOM_ENDPOINT",
        )
        # Terraform's form is `https://host/storage/v1/`: the API root is the host.
        return (custom.rstrip("/").removesuffix("/storage/v1") if custom else DEFAULT_ENDPOINT).rstrip("/")


def gcs_location(config: NebariConfig) -> GCSLocation:
    """The folder of an `existing` gcs backend: the one its `prefix` names."""
    from stagegraph.stages.cloud.names import folder_prefix

    body = config.terraform_state.config
    if not body.get("bucket"):
        raise StagegraphError(
            "terraform_state.config.bucket: a gcs backend needs the bucket that holds the state; set it"
        )
    return GCSLocation(body["bucket"], folder_prefix(body, "prefix"), tuple(sorted(body.items())))


def credentials_for(where: GCSLocation, environ: Mapping[str, str]) -> Credentials:
    """The credentials Terraform's gcs backend would use, scoped to object read/write."""
    import google.auth
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    token = where.setting("access_token", "GOOGLE_OAUTH_ACCESS_TOKEN", environ=environ)
    given = where.setting("credentials", "GOOGLE_BACKEND_CREDENTIALS", "GOOGLE_CREDENTIALS", environ=environ)
    creds: Credentials
    if token:
        creds = user_credentials.Credentials(token)  # type: ignore[no-untyped-call]
    elif given:
        try:
            info = json.loads(given) if given.lstrip().startswith("{") else json.loads(_read(given))
            creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[SCOPE]
            )
        except (ValueError, KeyError) as exc:
            raise StagegraphError(
                f"terraform_state.config.credentials: not a service account key ({type(exc).__name__}); "
                "give a key file's path or its JSON, or unset it to use Application Default Credentials"
            ) from None
    else:
        try:
            creds, _ = google.auth.default(scopes=[SCOPE])
        except google.auth.exceptions.DefaultCredentialsError:
            raise StagegraphError(
                f"{where.url('')}: no Google credentials; run `gcloud auth application-default login`, "
                "or set GOOGLE_APPLICATION_CREDENTIALS / GOOGLE_CREDENTIALS as for Terraform's gcs backend"
            ) from None
    target = where.setting(
        "impersonate_service_account", "GOOGLE_BACKEND_IMPERSONATE_SERVICE_ACCOUNT", environ=environ
    )
    if target:
        from google.auth import impersonated_credentials

        creds = impersonated_credentials.Credentials(  # type: ignore[no-untyped-call]
            source_credentials=creds, target_principal=target, target_scopes=[SCOPE]
        )
    return creds


def _read(path: str) -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise StagegraphError(
            f"terraform_state.config.credentials: cannot read {path} ({exc.strerror}); give the key "
            "file's path or its JSON"
        ) from None


class GCSStore(ConditionalStore):
    """The five GCS JSON API calls stagegraph makes, counted (for the benchmark)."""

    def __init__(self, where: GCSLocation) -> None:
        self.where = where
        self.requests = 0
        self._session: Any = None

    def describe(self, name: str = "") -> str:
        return self.where.url(name)

    def _http(self) -> Any:
        if self._session is None:
            from google.auth.transport.requests import AuthorizedSession

            self._session = AuthorizedSession(credentials_for(self.where, os.environ))  # type: ignore[no-untyped-call]
        return self._session

    def _object_url(self, name: str) -> str:
        bucket = quote(self.where.bucket, safe="")
        return f"{self.where.endpoint()}/storage/v1/b/{bucket}/o/{quote(self.where.key(name), safe='')}"

    def _call(self, method: str, url: str, name: str, **kwargs: Any) -> Any:
        import requests

        self.requests += 1
        try:
            return self._http().request(method, url, timeout=_TIMEOUT, **kwargs)
        except (requests.RequestException, OSError) as exc:
            raise StagegraphError(
                f"{self.where.url(name)}: cannot reach the shared state ({type(exc).__name__}); check "
                "the network and storage_custom_endpoint"
            ) from None
        except StagegraphError:
            raise
        except Exception as exc:  # google.auth's RefreshError and friends: credentials
            raise StagegraphError(
                f"{self.where.url(name)}: Google credentials failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); renew them "
                "(`gcloud auth application-default login`, or a new GOOGLE_OAUTH_ACCESS_TOKEN)"
            ) from None

    def exists(self) -> bool:
        # One listing of at most one object: needs only the object role the store needs anyway
        # (reading the bucket's own metadata would need storage.buckets.get).
        url = f"{self.where.endpoint()}/storage/v1/b/{quote(self.where.bucket, safe='')}/o"
        answer = self._call("GET", url, "", params={"maxResults": "1", "fields": "nextPageToken"})
        if answer.status_code == 404:
            return False
        self._ok(answer, "list", "")
        return True

    def get(self, name: str) -> Versioned | None:
        answer = self._call("GET", self._object_url(name), name, params={"alt": "media"})
        if answer.status_code == 404:
            return None
        self._ok(answer, "read", name)
        return Versioned(answer.content, str(answer.headers["x-goog-generation"]))

    def _upload(self, name: str, data: bytes, generation: str) -> str | None:
        url = f"{self.where.endpoint()}/upload/storage/v1/b/{quote(self.where.bucket, safe='')}/o"
        params = {"uploadType": "media", "name": self.where.key(name), "ifGenerationMatch": generation}
        answer = self._call(
            "POST", url, name, params=params, data=data, headers={"Content-Type": "application/json"}
        )
        if answer.status_code == 412:
            return None
        self._ok(answer, "write", name)
        return str(answer.json()["generation"])

    def create(self, name: str, data: bytes) -> str | None:
        return self._upload(name, data, "0")

    def replace(self, name: str, data: bytes, version: str) -> str | None:
        return self._upload(name, data, version)

    def delete(self, name: str, version: str | None = None) -> bool:
        params = {"ifGenerationMatch": version} if version is not None else {}
        answer = self._call("DELETE", self._object_url(name), name, params=params)
        if answer.status_code in (404, 412):
            return False
        self._ok(answer, "delete", name)
        return True

    def list(self, folder: str) -> list[str]:
        url = f"{self.where.endpoint()}/storage/v1/b/{quote(self.where.bucket, safe='')}/o"
        prefix = self.where.key(folder) + "/"
        names: list[str] = []
        token = ""
        for _ in range(1000):  # bounded: 1000 pages of 1000 records
            params = {"prefix": prefix, "fields": "items(name),nextPageToken"}
            if token:
                params["pageToken"] = token
            answer = self._call("GET", url, folder, params=params)
            self._ok(answer, "list", folder)
            page = answer.json()
            names += [item["name"].removeprefix(prefix) for item in page.get("items", [])]
            token = page.get("nextPageToken", "")
            if not token:
                break
        return names

    def _ok(self, answer: Any, what: str, name: str) -> None:
        if 200 <= answer.status_code < 300:
            return
        try:
            reason = answer.json()["error"]["errors"][0]["reason"]
        except (ValueError, KeyError, IndexError, TypeError):
            reason = answer.reason or ""
        raise StagegraphError(
            f"{self.where.url(name)}: cannot {what} the shared state ({answer.status_code} {reason}); "
            "check that these credentials may read and write objects in this bucket folder "
            "(roles/storage.objectUser on the bucket; see README, shared state)"
        )
