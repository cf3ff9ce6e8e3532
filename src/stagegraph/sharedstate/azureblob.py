"""The Azure Blob store of shared state: blobs in the backend's container, beside the state.

Terraform's azurerm backend keeps a stage's state in the blob its `key` names; stagegraph
keeps `records/<stage>.json` and `lock.json` in the folder of those keys
(`AzureBlobLocation.prefix`). Conditional writes are HTTP preconditions: `If-None-Match: *`
creates only if absent (409 BlobAlreadyExists otherwise), `If-Match: <etag>` replaces or
deletes only that version (412 ConditionNotMet otherwise).

Through `azure-storage-blob`. Credentials as Terraform's azurerm backend takes them:
`sas_token` / ARM_SAS_TOKEN, else `access_key` / ARM_ACCESS_KEY, else Entra ID (Azure AD)
as with `use_azuread_auth`: a service principal from `client_id`/`client_secret`/
`tenant_id` (ARM_CLIENT_ID, ARM_CLIENT_SECRET, ARM_TENANT_ID), a managed identity with
`use_msi` / ARM_USE_MSI, else the Azure CLI's login. Terraform without a key looks the
account key up through Azure Resource Manager; stagegraph does not, so that a deployer
needs only a data-plane role on the container (README, shared state). The blob endpoint is
`https://<account>.blob.<suffix>` for the backend's `environment`; STAGEGRAPH_AZURE_BLOB_ENDPOINT
replaces it (an emulator such as Azurite, or the tests' fake). The Azure libraries are
imported only inside methods.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stagegraph.errors import StagegraphError
from stagegraph.sharedstate.store import ConditionalStore, Versioned

if TYPE_CHECKING:
    from stagegraph.schema.config import NebariConfig

ENDPOINT_ENV = "STAGEGRAPH_AZURE_BLOB_ENDPOINT"
#: Storage endpoint suffixes of the clouds Terraform's `environment` names.
_SUFFIXES = {
    "public": "core.windows.net",
    "usgovernment": "core.usgovcloudapi.net",
    "china": "core.chinacloudapi.cn",
}
_TRUE = ("true", "1")


@dataclass(frozen=True)
class AzureBlobLocation:
    """The storage account, container and folder of a deployment's shared state."""

    account: str
    container: str
    prefix: str
    #: The backend's settings (credentials, environment); never rendered into messages.
    settings: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def url(self, name: str) -> str:
        return f"azure://{self.account}/{self.container}/{self.key(name)}"

    def setting(self, name: str, *env: str, environ: Mapping[str, str] | None = None) -> str:
        environ = os.environ if environ is None else environ
        value = dict(self.settings).get(name, "")
        return value or next((environ[e] for e in env if environ.get(e)), "")

    def account_url(self, environ: Mapping[str, str]) -> str:
        custom = environ.get(ENDPOINT_ENV, "")
        if custom:
            return custom.rstrip("/")
        cloud = self.setting("environment", "ARM_ENVIRONMENT", environ=environ) or "public"
        if cloud not in _SUFFIXES:
            raise StagegraphError(
                f"terraform_state.config.environment: {cloud!r} is not one of {', '.join(_SUFFIXES)}; "
                f"fix it, or set {ENDPOINT_ENV} to the blob endpoint"
            )
        return f"https://{self.account}.blob.{_SUFFIXES[cloud]}"


def azure_location(config: NebariConfig) -> AzureBlobLocation:
    """The folder of an `existing` azurerm backend: the one its `key` names."""
    from stagegraph.stages.cloud.names import folder_prefix

    body = config.terraform_state.config
    for setting in ("storage_account_name", "container_name"):
        if not body.get(setting):
            raise StagegraphError(
                f"terraform_state.config.{setting}: an azurerm backend needs the storage account and "
                "container that hold the state; set it"
            )
    return AzureBlobLocation(
        body["storage_account_name"],
        body["container_name"],
        folder_prefix(body, "key"),
        tuple(sorted(body.items())),
    )


def credential_for(where: AzureBlobLocation, environ: Mapping[str, str]) -> Any:
    """What azure-storage-blob authenticates with, chosen as Terraform's azurerm backend does."""
    sas = where.setting("sas_token", "ARM_SAS_TOKEN", environ=environ)
    if sas:
        return sas.lstrip("?")
    key = where.setting("access_key", "ARM_ACCESS_KEY", environ=environ)
    if key:
        return {"account_name": where.account, "account_key": key}
    from azure import identity

    client = where.setting("client_id", "ARM_CLIENT_ID", environ=environ)
    secret = where.setting("client_secret", "ARM_CLIENT_SECRET", environ=environ)
    tenant = where.setting("tenant_id", "ARM_TENANT_ID", environ=environ)
    if where.setting("use_msi", "ARM_USE_MSI", environ=environ).lower() in _TRUE:
        return identity.ManagedIdentityCredential(client_id=client or None)
    if client and secret and tenant:
        return identity.ClientSecretCredential(tenant, client, secret)
    return identity.AzureCliCredential(tenant_id=tenant) if tenant else identity.AzureCliCredential()


class AzureBlobStore(ConditionalStore):
    """Put, get, delete and list blobs of one container, counted (for the benchmark)."""

    def __init__(self, where: AzureBlobLocation) -> None:
        self.where = where
        self.requests = 0
        self._container: Any = None

    def describe(self, name: str = "") -> str:
        return self.where.url(name)

    def _client(self) -> Any:
        if self._container is None:
            from azure.storage.blob import ContainerClient

            self._container = ContainerClient(
                self.where.account_url(os.environ),
                self.where.container,
                credential=credential_for(self.where, os.environ),
                retry_total=3,
                connection_timeout=10,
                read_timeout=60,
            )
        return self._container

    def _call(self, what: str, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`fn`'s answer; the condition errors are left to the caller, the rest are one line."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
            ServiceRequestError,
        )

        self.requests += 1
        try:
            return fn(*args, **kwargs)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "ContainerNotFound":
                # Not an absent blob: an absent lock would otherwise look held, records look empty.
                raise StagegraphError(
                    f"{self.where.url(name)}: the container {self.where.container} does not exist in "
                    f"storage account {self.where.account}; create it, or fix terraform_state.config"
                ) from None
            raise
        except (ResourceExistsError, ResourceModifiedError):
            raise
        except ServiceRequestError as exc:
            raise StagegraphError(
                f"{self.where.url(name)}: cannot reach the shared state ({type(exc).__name__}); check "
                f"the network (and {ENDPOINT_ENV} if you set it)"
            ) from None
        except (HttpResponseError, ClientAuthenticationError) as exc:
            code = getattr(exc, "error_code", None) or getattr(exc, "status_code", None) or type(exc).__name__
            raise StagegraphError(
                f"{self.where.url(name)}: cannot {what} the shared state ({code}); check that these "
                "credentials may read and write blobs in this container (Storage Blob Data Contributor "
                "on it; see README, shared state)"
            ) from None

    def exists(self) -> bool:
        import socket
        from urllib.parse import urlsplit

        from azure.core.exceptions import ResourceNotFoundError

        if not os.environ.get(ENDPOINT_ENV):
            host = urlsplit(self.where.account_url(os.environ)).hostname or ""
            try:
                socket.getaddrinfo(host, 443)
            except socket.gaierror as exc:
                if exc.errno == socket.EAI_NONAME:
                    return False  # Azure keeps an account's name in DNS only while it exists
                raise StagegraphError(
                    f"{self.where.url('')}: cannot resolve {host} ({exc.strerror}); check the network"
                ) from None

        def probe() -> bool:
            try:
                next(
                    iter(self._client().list_blobs(name_starts_with=self.where.key(""), results_per_page=1)),
                    None,
                )
            except ResourceNotFoundError as exc:
                if getattr(exc, "error_code", None) == "ContainerNotFound":
                    return False
                raise
            return True

        return bool(self._call("list", "", probe))

    def get(self, name: str) -> Versioned | None:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._client().get_blob_client(self.where.key(name))
        try:
            download = self._call("read", name, blob.download_blob)
            data = download.readall()
        except ResourceNotFoundError:
            return None
        return Versioned(bytes(data), str(download.properties.etag))

    def _put(self, name: str, data: bytes, version: str | None) -> str | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        blob = self._client().get_blob_client(self.where.key(name))
        condition: dict[str, Any] = (
            {"overwrite": False}  # If-None-Match: *
            if version is None
            else {"overwrite": True, "etag": version, "match_condition": MatchConditions.IfNotModified}
        )
        try:
            put = self._call(
                "write",
                name,
                blob.upload_blob,
                data,
                content_settings=ContentSettings(content_type="application/json"),
                **condition,
            )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return None
        return str(put["etag"])

    def create(self, name: str, data: bytes) -> str | None:
        return self._put(name, data, None)

    def replace(self, name: str, data: bytes, version: str) -> str | None:
        return self._put(name, data, version)

    def delete(self, name: str, version: str | None = None) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        blob = self._client().get_blob_client(self.where.key(name))
        extra: dict[str, Any] = (
            {"etag": version, "match_condition": MatchConditions.IfNotModified} if version is not None else {}
        )
        try:
            self._call("delete", name, blob.delete_blob, **extra)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def list(self, folder: str) -> list[str]:
        prefix = self.where.key(folder) + "/"
        names: list[str] = []
        # The pager follows NextMarker itself; a request per page (counted as one call here).
        for item in self._call(
            "list", folder, lambda: list(self._client().list_blobs(name_starts_with=prefix))
        ):
            names.append(str(item.name).removeprefix(prefix))
        return names
