"""`terraform_state: {type: existing, backend: gcs | azurerm}`: records and lock beside the state.

The stores run against the FAKE GCS JSON API (`gcsfake`) and the FAKE Azure Blob service
(`azureblobfake`), through the same code paths and environment variables a user's run
takes. Real Terraform's gcs and azurerm backends cannot be pointed at these fakes, so no
stage is applied here: the first clone's records are written through the store (as a deploy
writes them), and the second clone is a real `doit` run that reads them; the rendered
backend blocks are checked as files here and against the providers' schemas elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azureblobfake import ACCOUNT_KEY, FakeAzureBlob
from gcsfake import FakeGCS
from sandboxproject import SandboxProject

from stagegraph.project import Project
from stagegraph.sharedstate import SharedRecordStore
from stagegraph.sharedstate.azureblob import ENDPOINT_ENV, AzureBlobStore
from stagegraph.sharedstate.gcs import GCSStore

STAGES = ("01-terraform-state", "02-infrastructure", "03-kubernetes-initialize")


@dataclass
class Backend:
    name: str
    state: dict[str, Any]
    env: dict[str, str]
    #: The objects in the fake store, by name.
    objects: Any
    where: str
    store_type: type
    #: The setting of the backend block that differs per stage.
    per_stage: str


@pytest.fixture(params=["gcs", "azurerm"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "gcs":
        with FakeGCS(buckets=("team-state",)) as gcs:
            yield Backend(
                "gcs",
                {"type": "existing", "backend": "gcs", "config": {"bucket": "team-state", "prefix": "demo"}},
                {
                    "GOOGLE_BACKEND_STORAGE_CUSTOM_ENDPOINT": f"{gcs.url}/storage/v1/",
                    "GOOGLE_OAUTH_ACCESS_TOKEN": gcs.token,
                },
                lambda: gcs.objects("team-state"),
                "gs://team-state/demo/",
                GCSStore,
                "prefix",
            )
            assert gcs.unknown == []
        return
    with FakeAzureBlob(containers=("tfstate",)) as azure:
        yield Backend(
            "azurerm",
            {
                "type": "existing",
                "backend": "azurerm",
                "config": {
                    "resource_group_name": "state-rg",
                    "storage_account_name": azure.account,
                    "container_name": "tfstate",
                    "key": "demo/terraform.tfstate",
                },
            },
            {ENDPOINT_ENV: azure.url, "ARM_ACCESS_KEY": ACCOUNT_KEY},
            lambda: azure.blobs("tfstate"),
            f"azure://{azure.account}/tfstate/demo/",
            AzureBlobStore,
            "key",
        )
        assert azure.unknown == []


def clone(where: Path, backend: Backend) -> SandboxProject:
    project = SandboxProject.create(where)
    project.extra_env.update(backend.env)
    project.edit_config(lambda c: c.update(terraform_state=backend.state))
    return project


def test_a_second_clone_reads_what_the_first_recorded_and_renders_one_state_per_stage(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = clone(tmp_path / "first", backend)
    for name, value in backend.env.items():
        monkeypatch.setenv(name, value)
    project = Project.discover(first.root, env={})
    store = project.shared_store
    assert isinstance(store, backend.store_type)
    assert store.describe("") == backend.where
    records = project.records
    assert isinstance(records, SharedRecordStore)
    for stage in STAGES:  # as a deploy records each applied stage
        records.record_success(
            stage, fingerprint=f"fp-{stage}", inputs={}, outputs={}, attempted_at=datetime.now(UTC)
        )
    stored = backend.objects()
    assert sorted(stored) == [f"demo/records/{stage}.json" for stage in STAGES]
    assert json.loads(stored["demo/records/02-infrastructure.json"])["fingerprint"] == "fp-02-infrastructure"

    second = clone(tmp_path / "second", backend)
    shown = second.doit("status")
    out = shown.stdout + shown.stderr
    assert "Traceback" not in out
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line[:2].isdigit()}
    # The first clone's applies, read from the store (the times it recorded), nothing else.
    assert all("never applied" not in lines[stage] for stage in STAGES), out
    assert "never applied" in lines["07-kubernetes-services"]
    assert not (second.state_dir / "records").exists()  # read from the store, nothing local
    assert not any(name.endswith("lock.json") for name in backend.objects())  # taken, then released
    # Each stage keeps its own state object beside the records (one would overwrite another).
    second.doit("render")
    blocks = {
        stage: json.loads(next(second.root.rglob(f"{stage}/**/backend.tf.json")).read_text())
        for stage in ("02-infrastructure", "07-kubernetes-services")
    }
    settings = {stage: block["terraform"]["backend"][backend.name] for stage, block in blocks.items()}
    assert settings["02-infrastructure"][backend.per_stage].startswith("demo/02-infrastructure")
    assert settings["07-kubernetes-services"][backend.per_stage].startswith("demo/07-kubernetes-services")


def test_a_missing_setting_is_named(tmp_path: Path, backend: Backend) -> None:
    project = clone(tmp_path / "p", backend)
    setting = "bucket" if backend.name == "gcs" else "container_name"
    project.edit_config(lambda c: c["terraform_state"]["config"].pop(setting))
    refused = project.doit("status", check=False)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "Traceback" not in out
    assert f"terraform_state.config.{setting}:" in out and "set it" in out


def test_credentials_without_access_are_refused_in_one_line_naming_the_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stagegraph.errors import StagegraphError
    from stagegraph.sharedstate.azureblob import AzureBlobLocation
    from stagegraph.sharedstate.gcs import GCSLocation

    with FakeGCS(buckets=("team-state",)) as gcs:
        settings = (("storage_custom_endpoint", gcs.url), ("access_token", gcs.token))
        gcs.deny = True
        with pytest.raises(StagegraphError) as refused:
            GCSStore(GCSLocation("team-state", "demo", settings)).get("lock.json")
        assert str(refused.value) == (
            "gs://team-state/demo/lock.json: cannot read the shared state (403 forbidden); check that these "
            "credentials may read and write objects in this bucket folder (roles/storage.objectUser on the "
            "bucket; see README, shared state)"
        )
        gcs.deny = False
        # An expired token (401): google-auth cannot renew a bare token, and says so.
        stale = (settings[0], ("access_token", "expired"))
        with pytest.raises(StagegraphError) as expired:
            GCSStore(GCSLocation("team-state", "demo", stale)).get("lock.json")
        message = str(expired.value)
        assert message.startswith("gs://team-state/demo/lock.json: Google credentials failed (RefreshError: ")
        assert message.endswith("or a new GOOGLE_OAUTH_ACCESS_TOKEN)") and "\n" not in message
    with FakeAzureBlob(containers=("tfstate",)) as azure:
        azure.deny = True
        monkeypatch.setenv(ENDPOINT_ENV, azure.url)
        monkeypatch.setenv("ARM_ACCESS_KEY", ACCOUNT_KEY)
        with pytest.raises(StagegraphError) as refused:
            AzureBlobStore(AzureBlobLocation(azure.account, "tfstate", "demo")).create("lock.json", b"{}")
        assert str(refused.value) == (
            f"azure://{azure.account}/tfstate/demo/lock.json: cannot write the shared state "
            "(AuthorizationPermissionMismatch); check that these credentials may read and write blobs in "
            "this container (Storage Blob Data Contributor on it; see README, shared state)"
        )
        assert len(azure.requests) == 1  # a refusal is not retried


def test_a_missing_bucket_or_container_is_named_not_taken_for_an_empty_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stagegraph.errors import StagegraphError
    from stagegraph.sharedstate.azureblob import AzureBlobLocation
    from stagegraph.sharedstate.gcs import GCSLocation

    with FakeGCS(buckets=()) as gcs:
        settings = (("storage_custom_endpoint", gcs.url), ("access_token", gcs.token))
        with pytest.raises(StagegraphError) as refused:
            GCSStore(GCSLocation("gone", "demo", settings)).create("lock.json", b"{}")
        assert str(refused.value).startswith(
            "gs://gone/demo/lock.json: cannot write the shared state (404 notFound)"
        )
    with FakeAzureBlob(containers=()) as azure:
        monkeypatch.setenv(ENDPOINT_ENV, azure.url)
        monkeypatch.setenv("ARM_ACCESS_KEY", ACCOUNT_KEY)
        store = AzureBlobStore(AzureBlobLocation(azure.account, "gone", "demo"))
        for call in (lambda: store.create("lock.json", b"{}"), lambda: store.get("records/x.json")):
            with pytest.raises(StagegraphError) as refused:
                call()
            assert "the container gone does not exist in storage account devstoreaccount1" in str(
                refused.value
            )
