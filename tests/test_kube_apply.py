"""Server-side apply, delete and the manifest driver, against the FAKE API server.

`tests/kubefake.py` is a stand-in for a Kubernetes API server (none can run on these
machines), reached through a real kubeconfig by the real `kubernetes` client.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubefake import FakeKube

from stagegraph.driver import StageContext
from stagegraph.errors import DeployError
from stagegraph.kube.apply import (
    ManifestError,
    Resolver,
    apply_manifest,
    delete_object,
    ref_of,
    would_change,
)
from stagegraph.kube.client import KubeApiError, KubeError, KubeTarget, connect
from stagegraph.kube.driver import INVENTORY, ManifestDriver, load_manifests, read_inventory
from stagegraph.stage import Stage


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube() as server:
        server.add_namespace("dev")
        yield server


@pytest.fixture
def target(fake: FakeKube, tmp_path: Path) -> KubeTarget:
    return KubeTarget(str(fake.write_kubeconfig(tmp_path / "kubeconfig")), "fake")


def configmap(name: str = "settings", **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "dev"},
        "data": data or {"greeting": "hello"},
    }


def rv(fake: FakeKube, name: str = "settings") -> str:
    obj = fake.get("v1", "configmaps", "dev", name)
    assert obj is not None
    return str(obj["metadata"]["resourceVersion"])


# --- apply / re-apply / change / delete ---------------------------------------------------


def test_apply_creates_then_reapply_is_a_no_op_then_change_updates(
    fake: FakeKube, target: KubeTarget
) -> None:
    with connect(target) as client:
        resolver = Resolver(client)
        first = apply_manifest(client, resolver, configmap(), "manifests/cm.yaml")
        assert first.action == "created"
        assert fake.get("v1", "configmaps", "dev", "settings")["data"] == {"greeting": "hello"}  # type: ignore[index]
        version = rv(fake)

        again = apply_manifest(client, resolver, configmap(), "manifests/cm.yaml")
        assert again.action == "unchanged"
        assert rv(fake) == version  # the server wrote nothing

        changed = apply_manifest(client, resolver, configmap(greeting="bonjour"), "manifests/cm.yaml")
        assert changed.action == "configured"
        assert rv(fake) != version
        assert fake.get("v1", "configmaps", "dev", "settings")["data"] == {"greeting": "bonjour"}  # type: ignore[index]


def test_a_field_dropped_from_the_manifest_is_removed_from_the_object(
    fake: FakeKube, target: KubeTarget
) -> None:
    with connect(target) as client:
        resolver = Resolver(client)
        apply_manifest(client, resolver, configmap(a="1", b="2"), "cm.yaml")
        apply_manifest(client, resolver, configmap(a="1"), "cm.yaml")
    assert fake.get("v1", "configmaps", "dev", "settings")["data"] == {"a": "1"}  # type: ignore[index]


def test_apply_forces_back_a_field_someone_changed_by_hand(fake: FakeKube, target: KubeTarget) -> None:
    with connect(target) as client:
        resolver = Resolver(client)
        apply_manifest(client, resolver, configmap(), "cm.yaml")
        # Without force the fake refuses, as the real server does...
        hand = copy.deepcopy(configmap(greeting="edited"))
        with pytest.raises(KubeApiError) as err:
            client.request(
                "PATCH",
                "/api/v1/namespaces/dev/configmaps/settings",
                query=[("fieldManager", "kubectl")],
                body=hand,
                content_type="application/apply-patch+yaml",
            )
        assert err.value.status == 409 and err.value.reason == "Conflict"
        # ...a person forces it; the next deploy takes the field back.
        fake.apply_as("kubectl", hand, force=True)
        assert fake.get("v1", "configmaps", "dev", "settings")["data"]["greeting"] == "edited"  # type: ignore[index]
        assert apply_manifest(client, resolver, configmap(), "cm.yaml").action == "configured"
    assert fake.get("v1", "configmaps", "dev", "settings")["data"]["greeting"] == "hello"  # type: ignore[index]


def test_delete_removes_and_a_second_delete_finds_nothing(fake: FakeKube, target: KubeTarget) -> None:
    with connect(target) as client:
        resolver = Resolver(client)
        apply_manifest(client, resolver, configmap(), "cm.yaml")
        ref = ref_of(configmap(), "cm.yaml")
        assert delete_object(client, resolver, ref) is True
        assert fake.get("v1", "configmaps", "dev", "settings") is None
        assert delete_object(client, resolver, ref) is False


def test_dry_run_reports_changes_and_writes_nothing(fake: FakeKube, target: KubeTarget) -> None:
    with connect(target) as client:
        resolver = Resolver(client)
        assert would_change(client, resolver, configmap(), "cm.yaml") is True  # not there yet
        assert fake.get("v1", "configmaps", "dev", "settings") is None
        apply_manifest(client, resolver, configmap(), "cm.yaml")
        version = rv(fake)
        assert would_change(client, resolver, configmap(), "cm.yaml") is False
        assert would_change(client, resolver, configmap(greeting="changed"), "cm.yaml") is True
    assert rv(fake) == version
    assert fake.get("v1", "configmaps", "dev", "settings")["data"] == {"greeting": "hello"}  # type: ignore[index]
    dry_runs = [q for m, _, q in fake.requests if m == "PATCH" and q.get("dryRun") == ["All"]]
    assert len(dry_runs) == 2


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.org"},
    "spec": {
        "group": "example.org",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}
        ],
    },
}


def test_a_kind_outside_the_table_is_found_by_discovery(fake: FakeKube, target: KubeTarget) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    widget = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "dev"}}
    with connect(target) as client:
        resolver = Resolver(client)
        with pytest.raises(ManifestError) as err:
            apply_manifest(client, resolver, widget, "manifests/w.yaml")
        assert str(err.value) == (
            "manifests/w.yaml: the cluster serves no kind Widget in apiVersion example.org/v1; "
            "install its CRD first or fix apiVersion/kind"
        )
        apply_manifest(client, resolver, crd, "crds/widgets.yaml")
        # Like the real server, a new CRD is not Established (nor its kind served) at once.
        status = fake.get("apiextensions.k8s.io/v1", "customresourcedefinitions", None, "widgets.example.org")
        assert status is not None and status["status"]["conditions"][0]["status"] == "False"
        fake.settle()
        assert apply_manifest(client, resolver, widget, "manifests/w.yaml").action == "created"
    assert fake.names("example.org/v1", "widgets", "dev") == ["w"]
    assert ("GET", "/apis/example.org/v1", {}) in fake.requests


# --- errors are one line, name the file, and never carry the token --------------------------


def test_a_stale_resource_version_is_a_409_naming_the_file(fake: FakeKube, target: KubeTarget) -> None:
    with connect(target) as client:
        resolver = Resolver(client)
        apply_manifest(client, resolver, configmap(), "cm.yaml")
        stale = configmap(greeting="x")
        stale["metadata"]["resourceVersion"] = "1"
        with pytest.raises(ManifestError) as err:
            apply_manifest(client, resolver, stale, "manifests/cm.yaml")
    message = str(err.value)
    assert message.startswith(
        "manifests/cm.yaml: server-side apply of ConfigMap dev/settings failed: 409 Conflict: "
    )
    assert "\n" not in message


def test_a_missing_namespace_is_a_404_with_a_hint(target: KubeTarget) -> None:
    cm = configmap()
    cm["metadata"]["namespace"] = "nowhere"
    with connect(target) as client, pytest.raises(ManifestError) as err:
        apply_manifest(client, Resolver(client), cm, "manifests/cm.yaml")
    assert str(err.value) == (
        "manifests/cm.yaml: server-side apply of ConfigMap nowhere/settings failed: "
        '404 NotFound: namespaces "nowhere" not found; is its namespace or CRD installed?'
    )


def test_post_of_an_existing_object_is_a_409_already_exists(target: KubeTarget) -> None:
    with connect(target) as client, pytest.raises(KubeApiError) as err:
        client.request(
            "POST",
            "/api/v1/namespaces",
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}},
        )
    assert str(err.value) == 'POST /api/v1/namespaces: 409 AlreadyExists: namespaces "dev" already exists'


def test_wrong_token_is_unauthorized_and_the_token_is_not_shown(fake: FakeKube, tmp_path: Path) -> None:
    path = fake.write_kubeconfig(tmp_path / "bad", token="not-the-right-token-1234")
    with connect(KubeTarget(str(path))) as client, pytest.raises(KubeApiError) as err:
        client.request("GET", "/api/v1/namespaces/dev")
    assert str(err.value) == "GET /api/v1/namespaces/dev: 401 Unauthorized: Unauthorized"
    assert "1234" not in str(err.value)


def test_missing_kubeconfig_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(KubeError) as err, connect(KubeTarget(str(tmp_path / "nope"))):
        pass
    assert str(err.value).startswith(
        f"{tmp_path / 'nope'}: kubeconfig file not found (context the current context), "
    )


def test_unknown_context_names_the_kubeconfig(target: KubeTarget) -> None:
    with pytest.raises(KubeError) as err, connect(KubeTarget(target.kubeconfig_path, "no-such-context")):
        pass
    assert str(err.value).startswith(f"{target.kubeconfig_path} (context no-such-context): ")
    assert "no-such-context" in str(err.value) and "\n" not in str(err.value)


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    with FakeKube() as gone:
        path = gone.write_kubeconfig(tmp_path / "kubeconfig")
        url = gone.url
    with connect(KubeTarget(str(path))) as client, pytest.raises(KubeError) as err:
        client.request("GET", "/version")
    message = str(err.value)
    assert message.startswith(f"cannot reach the Kubernetes API at {url} (kubeconfig {path}): ")
    assert "\n" not in message and "fake-token" not in message


# --- the manifest driver ------------------------------------------------------------------


def _write(stage_dir: Path, rel: str, manifest: dict[str, Any]) -> None:
    path = stage_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(manifest))


def _outputs(ctx: StageContext, applied: Any) -> dict[str, Any]:
    return {"names": [m["metadata"]["name"] for m in applied]}


DRIVER = ManifestDriver(outputs=_outputs)
STAGE = Stage(name="90-manifests", description="test", render=lambda ctx: {}, kind="manifests", driver=DRIVER)


def _ctx(stage_dir: Path, target: KubeTarget, lines: list[str]) -> StageContext:
    def no_terraform() -> Any:
        raise AssertionError("a manifest stage on a real cluster never runs Terraform")

    return StageContext(
        stage=STAGE,
        stage_dir=stage_dir,
        provider="existing",
        variables={
            "kubeconfig_path": target.kubeconfig_path,
            "kube_context": target.context,
            "namespace": "dev",
        },
        secret_env={},
        record=None,
        log_path=stage_dir.parent / "logs" / "apply.log",
        line=lines.append,
        terraform_binary=no_terraform,
    )


def test_driver_applies_in_order_prunes_plans_and_destroys(
    fake: FakeKube, target: KubeTarget, tmp_path: Path
) -> None:
    stage_dir = tmp_path / "rendered" / "90-manifests"
    _write(stage_dir, "manifests/20-b.yaml", configmap("b"))
    _write(stage_dir, "manifests/10-a.yaml", configmap("a"))
    _write(
        stage_dir, "crds/ns.yaml", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "extra"}}
    )
    lines: list[str] = []
    ctx = _ctx(stage_dir, target, lines)

    result = DRIVER.apply(ctx)
    assert result.outputs == {"names": ["extra", "a", "b"]}  # crds/ first, then sorted files
    assert fake.names("v1", "configmaps", "dev") == ["a", "b"]
    assert "ConfigMap dev/a: Creation complete (manifests/10-a.yaml)" in lines
    assert [r.name for r in read_inventory(stage_dir) or []] == ["extra", "a", "b"]
    versions = {n: rv(fake, n) for n in ("a", "b")}

    lines.clear()
    DRIVER.apply(ctx)  # nothing changed: nothing written
    assert {n: rv(fake, n) for n in ("a", "b")} == versions
    assert "ConfigMap dev/a: unchanged (manifests/10-a.yaml)" in lines

    plan = stage_dir / "stagegraph.tfplan"
    assert DRIVER.plan(ctx, plan) is False
    (stage_dir / "manifests/20-b.yaml").unlink()  # b is no longer rendered
    _write(stage_dir, "manifests/10-a.yaml", configmap("a", greeting="changed"))
    assert DRIVER.plan(ctx, plan) is True
    assert plan.stat().st_mode & 0o777 == 0o600
    assert fake.get("v1", "configmaps", "dev", "a")["data"] == {"greeting": "hello"}  # type: ignore[index]

    DRIVER.apply_plan(ctx, plan)
    assert fake.names("v1", "configmaps", "dev") == ["a"]  # b pruned
    assert fake.get("v1", "configmaps", "dev", "a")["data"] == {"greeting": "changed"}  # type: ignore[index]
    assert "ConfigMap dev/b: Destruction complete (no longer rendered)" in lines

    DRIVER.destroy(ctx)
    assert fake.names("v1", "configmaps", "dev") == []
    extra = fake.get("v1", "namespaces", None, "extra")
    assert extra is not None and extra["status"]["phase"] == "Terminating"  # as the real server
    fake.settle()
    assert fake.get("v1", "namespaces", None, "extra") is None
    assert read_inventory(stage_dir) == []
    assert "Destroy complete" in (stage_dir.parent / "logs" / "apply.log").read_text()


def test_driver_lists_objects_before_applying_so_a_crash_leaves_none_untracked(
    fake: FakeKube, target: KubeTarget, tmp_path: Path
) -> None:
    stage_dir = tmp_path / "stage"
    _write(stage_dir, "manifests/a.yaml", configmap("a"))
    bad = configmap("b")
    bad["metadata"]["namespace"] = "nowhere"
    _write(stage_dir, "manifests/b.yaml", bad)
    ctx = _ctx(stage_dir, target, [])
    with pytest.raises(
        ManifestError, match=r"^manifests/b.yaml: server-side apply of ConfigMap nowhere/b failed"
    ):
        DRIVER.apply(ctx)
    assert fake.names("v1", "configmaps", "dev") == ["a"]
    assert [r.name for r in read_inventory(stage_dir) or []] == ["a", "b"]
    DRIVER.destroy(ctx)  # deletes a; b was never created
    assert fake.names("v1", "configmaps", "dev") == []


def test_destroy_without_inventory_deletes_what_is_rendered(
    fake: FakeKube, target: KubeTarget, tmp_path: Path
) -> None:
    stage_dir = tmp_path / "stage"
    _write(stage_dir, "manifests/a.yaml", configmap("a"))
    ctx = _ctx(stage_dir, target, [])
    DRIVER.apply(ctx)
    (stage_dir / INVENTORY).unlink()
    DRIVER.destroy(ctx)
    assert fake.names("v1", "configmaps", "dev") == []


def test_malformed_manifests_are_refused_before_the_cluster_is_touched(tmp_path: Path) -> None:
    stage_dir = tmp_path / "stage"
    (stage_dir / "manifests").mkdir(parents=True)
    (stage_dir / "manifests/a.yaml").write_text("kind: ConfigMap\nmetadata: {name: a\n")
    with pytest.raises(ManifestError, match=r"a.yaml: not valid YAML \(line \d+\); re-render the stage"):
        load_manifests(stage_dir)
    (stage_dir / "manifests/a.yaml").write_text("kind: ConfigMap\nmetadata: {name: a}\n")
    with pytest.raises(ManifestError) as err:
        load_manifests(stage_dir)
    assert str(err.value) == "manifests/a.yaml: manifest lacks apiVersion; every object needs all three"


def test_a_manifest_stage_without_cluster_inputs_says_what_is_missing(tmp_path: Path) -> None:
    stage_dir = tmp_path / "stage"
    _write(stage_dir, "manifests/a.yaml", configmap("a"))
    ctx = _ctx(stage_dir, KubeTarget("unused"), [])
    ctx.variables = {}
    with pytest.raises(
        DeployError, match=r"^stage 90-manifests: a manifest stage needs a kubeconfig_path input"
    ):
        DRIVER.apply(ctx)


# --- the fake behaves like a real server where the driver depends on it ----------------------


def test_driver_waits_for_its_crds_to_be_established(
    target: KubeTarget, fake: FakeKube, tmp_path: Path
) -> None:
    fake.establish_after = 0.5
    stage_dir = tmp_path / "rendered" / "90-manifests"
    _write(stage_dir, "crds/widgets.yaml", WIDGET_CRD)
    _write(
        stage_dir,
        "manifests/w.yaml",
        {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "dev"}},
    )
    lines: list[str] = []
    DRIVER.apply(_ctx(stage_dir, target, lines))
    assert fake.names("example.org/v1", "widgets", "dev") == ["w"]
    assert "1 CRD(s) Established" in lines


def test_driver_names_a_crd_that_never_becomes_established(
    target: KubeTarget, fake: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stagegraph.kube.driver as driver

    fake.establish_after = 3600
    monkeypatch.setattr(driver, "ESTABLISH_TIMEOUT", 0.5)
    stage_dir = tmp_path / "rendered" / "90-manifests"
    _write(stage_dir, "crds/widgets.yaml", WIDGET_CRD)
    with pytest.raises(DeployError) as err:
        DRIVER.apply(_ctx(stage_dir, target, []))
    assert str(err.value).startswith(
        "crds/widgets.yaml: CustomResourceDefinition widgets.example.org is not Established after 0.5s"
    )


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Bad_Name"}},
            'Namespace "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 label',
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "dev", "labels": {"a": "x y"}},
            },
            'ConfigMap "c" is invalid: metadata.labels.a: Invalid value: "x y"',
        ),
        (
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "dev"},
                "spec": {},
            },
            'Deployment "d" is invalid: spec.selector: Required value',
        ),
    ],
)
def test_invalid_objects_are_refused_with_422(
    fake: FakeKube, target: KubeTarget, manifest: dict[str, Any], message: str
) -> None:
    with connect(target) as client, pytest.raises(ManifestError) as err:
        apply_manifest(client, Resolver(client), manifest, "manifests/x.yaml")
    assert "422" in str(err.value) or "Invalid" in str(err.value)
    assert message in str(err.value)


def test_a_terminating_namespace_refuses_new_content(fake: FakeKube, target: KubeTarget) -> None:
    fake.terminate_after = 3600
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gone"}}
    in_gone = {**configmap("a"), "metadata": {"name": "a", "namespace": "gone"}}
    with connect(target) as client:
        resolver = Resolver(client)
        apply_manifest(client, resolver, namespace, "manifests/ns.yaml")
        apply_manifest(client, resolver, in_gone, "manifests/a.yaml")
        assert delete_object(client, resolver, ref_of(namespace, "manifests/ns.yaml"))
        assert fake.names("v1", "configmaps", "gone") == []  # its content is deleted first
        live = fake.get("v1", "namespaces", None, "gone")
        assert live is not None and live["status"]["phase"] == "Terminating"
        with pytest.raises(ManifestError) as err:
            apply_manifest(
                client,
                resolver,
                {**in_gone, "metadata": {"name": "b", "namespace": "gone"}},
                "manifests/b.yaml",
            )
    assert "unable to create new content in namespace gone because it is being terminated" in str(err.value)


def test_fields_set_by_another_manager_stay_when_stagegraph_applies(
    fake: FakeKube, target: KubeTarget
) -> None:
    with connect(target) as client:
        resolver = Resolver(client)
        apply_manifest(client, resolver, configmap("a"), "manifests/a.yaml")
        fake.apply_as("kubectl-edit", {**configmap("a"), "data": {"extra": "by hand"}}, force=False)
        apply_manifest(client, resolver, configmap("a", greeting="again"), "manifests/a.yaml")
    data = (fake.get("v1", "configmaps", "dev", "a") or {})["data"]
    assert data == {"greeting": "again", "extra": "by hand"}
