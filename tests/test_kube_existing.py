"""`existing` clusters: the kubeconfig found as kubectl finds it, checked against the FAKE API.

`tests/kubefake.py` stands in for a Kubernetes API server (none can run on these machines);
it is reached through real kubeconfig files by the real `kubernetes` client. The end-to-end
test applies 01 and 02 of an `existing` deployment with real Terraform (02 needs no
provider for `existing`) and then connects through the outputs 02 recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubefake import FakeKube
from sandboxproject import ROOT, SandboxProject

from stagegraph.kube.client import KubeError, KubeTarget, connect
from stagegraph.kube.kubeconfig import kubeconfig_source, resolve_kubeconfig
from stagegraph.lockfile import load_lockfile
from stagegraph.stage import CheckContext, NoOutputs, Upstream
from stagegraph.stages import stage_checks
from stagegraph.stages.infrastructure import InfrastructureOutputs
from stagegraph.views import PinView

LOCK = load_lockfile(ROOT / "lockfiles" / "versions.yaml")
FIELD = "existing.kube_context in nebari-config.yaml"


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    # TLS: Terraform's kubernetes backend (client-go) sends the kubeconfig's token only
    # to an https server.
    with FakeKube(tls=True) as server:
        yield server


def cluster_records(fake: FakeKube) -> dict[str, Any]:
    """The deploy records an `existing` deployment keeps in its cluster (ConfigMaps)."""
    return {
        cm["metadata"]["annotations"]["stagegraph.nebari.dev/stage"]: json.loads(cm["data"]["record.json"])
        for name in fake.names("v1", "configmaps", "default")
        if (cm := fake.get("v1", "configmaps", "default", name)) is not None
    }


def kubeconfig(
    path: Path, contexts: dict[str, tuple[str, str]], current: str | None = None, **named: Any
) -> Path:
    """A kubeconfig with `contexts` {name: (cluster, user)} and the clusters/users in `named`."""
    data: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": s}} for n, s in named.get("clusters", {}).items()],
        "users": [{"name": n, "user": {"token": t}} for n, t in named.get("users", {}).items()],
        "contexts": [{"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()],
    }
    if current:
        data["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def source(tmp_path: Path, configured: str | None = None, env: str | None = None) -> Any:
    environ = {"KUBECONFIG": env} if env is not None else {}
    return kubeconfig_source(
        configured,
        config_dir=tmp_path / "deploy",
        config_name="nebari-config.yaml",
        environ=environ,
        home=tmp_path / "home",
        cwd=tmp_path / "cwd",
    )


# --- where the kubeconfig comes from ------------------------------------------------------


def test_config_field_wins_over_kubeconfig_env_and_is_relative_to_the_config(tmp_path: Path) -> None:
    src = source(tmp_path, configured="kube/prod.yaml", env="/elsewhere/config")
    assert src.paths == (tmp_path / "deploy" / "kube" / "prod.yaml",)
    assert src.origin == "existing.kubeconfig in nebari-config.yaml"


def test_kubeconfig_env_is_a_list_relative_to_the_working_directory(tmp_path: Path) -> None:
    src = source(tmp_path, env=os.pathsep.join(["a.yaml", "", "~/b.yaml", "/abs/c.yaml"]))
    assert src.paths == (tmp_path / "cwd" / "a.yaml", Path("~/b.yaml").expanduser(), Path("/abs/c.yaml"))
    assert src.origin == "the KUBECONFIG environment variable"


def test_default_is_kube_config_in_home(tmp_path: Path) -> None:
    assert source(tmp_path).paths == (tmp_path / "home" / ".kube" / "config",)
    assert source(tmp_path, env="").paths == (tmp_path / "home" / ".kube" / "config",)


# --- merging as kubectl does ----------------------------------------------------------------


def test_merged_list_skips_missing_files_and_takes_the_first_current_context(tmp_path: Path) -> None:
    a = kubeconfig(
        tmp_path / "a.yaml", {"dev": ("c1", "u1")}, clusters={"c1": "https://a"}, users={"u1": "t"}
    )
    b = kubeconfig(
        tmp_path / "b.yaml", {"prod": ("c2", "u2")}, "prod", clusters={"c2": "https://b"}, users={"u2": "t"}
    )
    c = kubeconfig(tmp_path / "c.yaml", {}, "dev")
    env = os.pathsep.join([str(tmp_path / "missing.yaml"), str(a), str(b), str(c)])
    # a sets no current-context; b is the first that does.
    assert resolve_kubeconfig(source(tmp_path, env=env), None, context_field=FIELD) == KubeTarget(
        str(b), "prod"
    )
    # A context named in the config is found in whichever file defines it first.
    assert resolve_kubeconfig(source(tmp_path, env=env), "dev", context_field=FIELD) == KubeTarget(
        str(a), "dev"
    )


def test_first_file_to_define_a_context_wins(tmp_path: Path) -> None:
    one = kubeconfig(
        tmp_path / "1.yaml", {"x": ("c", "u")}, "x", clusters={"c": "https://1"}, users={"u": "t"}
    )
    two = kubeconfig(
        tmp_path / "2.yaml", {"x": ("c", "u")}, "x", clusters={"c": "https://2"}, users={"u": "t"}
    )
    env = os.pathsep.join([str(one), str(two)])
    assert resolve_kubeconfig(source(tmp_path, env=env), "x", context_field=FIELD).kubeconfig_path == str(one)


def test_context_whose_parts_come_from_two_files_is_refused_with_the_fix(tmp_path: Path) -> None:
    a = kubeconfig(tmp_path / "a.yaml", {"ctx": ("shared", "me")}, "ctx", users={"me": "t"})
    b = kubeconfig(tmp_path / "b.yaml", {}, clusters={"shared": "https://b"})
    env = os.pathsep.join([str(a), str(b)])
    with pytest.raises(KubeError) as err:
        resolve_kubeconfig(source(tmp_path, env=env), None, context_field=FIELD)
    assert str(err.value) == (
        f"kubeconfig {a}, {b} (from the KUBECONFIG environment variable): context 'ctx' is in {a} but the "
        f"merge takes its cluster from {b}; Terraform and the Kubernetes client read one file: write one "
        "with `kubectl config view --flatten --minify --context ctx > FILE` and set existing.kubeconfig to it"
    )


# --- errors name the paths and the context tried ----------------------------------------------


def test_no_file_names_every_path_tried(tmp_path: Path) -> None:
    env = os.pathsep.join([str(tmp_path / "x.yaml"), str(tmp_path / "y.yaml")])
    with pytest.raises(KubeError) as err:
        resolve_kubeconfig(source(tmp_path, env=env), "prod", context_field=FIELD)
    assert str(err.value).startswith(
        f"kubeconfig {tmp_path / 'x.yaml'}, {tmp_path / 'y.yaml'} (from the KUBECONFIG environment "
        "variable): no such file; point existing.kubeconfig or KUBECONFIG at the cluster's kubeconfig"
    )


def test_unknown_context_names_the_file_the_field_and_the_known_contexts(tmp_path: Path) -> None:
    path = kubeconfig(
        tmp_path / "deploy" / "k.yaml",
        {"dev": ("c", "u")},
        "dev",
        clusters={"c": "https://x"},
        users={"u": "t"},
    )
    with pytest.raises(KubeError) as err:
        resolve_kubeconfig(source(tmp_path, configured="k.yaml"), "prod", context_field=FIELD)
    assert str(err.value) == (
        f"kubeconfig {path} (from existing.kubeconfig in nebari-config.yaml): "
        "existing.kube_context in nebari-config.yaml: 'prod' is not a context there (contexts: dev)"
    )


def test_no_context_anywhere_asks_for_kube_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "home" / ".kube" / "config", {"a": ("c", "u")}, clusters={"c": "s"})
    with pytest.raises(KubeError) as err:
        resolve_kubeconfig(source(tmp_path), None, context_field=FIELD)
    assert str(err.value) == (
        f"kubeconfig {path} (from the default ~/.kube/config): no current-context, and "
        "existing.kube_context in nebari-config.yaml is not set; set it to one of the contexts: a"
    )


def test_client_error_for_a_vanished_kubeconfig_names_path_and_context(tmp_path: Path) -> None:
    with pytest.raises(KubeError) as err, connect(KubeTarget(str(tmp_path / "gone"), "prod")):
        pass
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'gone'}: kubeconfig file not found (context prod), the one ")
    assert "re-apply 02-infrastructure (`doit 02-infrastructure`)" in message
    assert "deploy 02-infrastructure first" not in message


def test_client_error_for_an_unknown_context_names_path_and_context(fake: FakeKube, tmp_path: Path) -> None:
    path = fake.write_kubeconfig(tmp_path / "k.yaml", context="fake")
    with pytest.raises(KubeError) as err, connect(KubeTarget(str(path), "prod")):
        pass
    assert str(err.value).startswith(f"{path} (context prod): ")


# --- end to end: 02 applied with real Terraform, then the cluster reached through it -----------


def preflight_lines(infra: InfrastructureOutputs) -> list[str]:
    lines: list[str] = []
    ctx = CheckContext(
        stage="03-kubernetes-initialize",
        provider="existing",
        upstream=Upstream("03-kubernetes-initialize", {"02-infrastructure": infra}),
        outputs=NoOutputs(),
        line=lines.append,
        pins=PinView(LOCK, LOCK.keys(), "03-kubernetes-initialize", "lockfiles/versions.yaml"),
    )
    stage_checks.kubernetes_version_preflight(ctx)
    return lines


@pytest.mark.e2e
@pytest.mark.slow
def test_existing_deploy_takes_kubeconfig_from_the_environment_and_reaches_the_cluster(
    fake: FakeKube, tmp_path: Path
) -> None:
    p = SandboxProject.create(tmp_path / "p")

    def to_existing(c: dict[str, Any]) -> None:
        c.update(provider="existing", existing={"kube_context": None})
        c.pop("sandbox", None)

    p.edit_config(to_existing)
    p.extra_env["HOME"] = str(tmp_path / "home")  # no ~/.kube/config there
    first = fake.write_kubeconfig(tmp_path / "kube" / "first.yaml", context="fake")
    other = fake.write_kubeconfig(tmp_path / "kube" / "other.yaml", context="other")
    p.extra_env["KUBECONFIG"] = os.pathsep.join(
        [str(tmp_path / "kube" / "missing.yaml"), str(first), str(other)]
    )

    p.doit("deploy", "--stop-at", "02-infrastructure")
    # `terraform_state.type: remote` on existing, as Nebari does: Terraform's kubernetes
    # backend keeps each stage's state in a Secret, stagegraph its records beside it.
    assert fake.names("v1", "secrets", "default") == [
        "tfstate-default-demo-dev-01-terraform-state",
        "tfstate-default-demo-dev-02-infrastructure",
    ]
    assert not (p.state_dir / "records").exists()
    assert set(cluster_records(fake)) == {"01-terraform-state", "02-infrastructure"}
    assert fake.get("coordination.k8s.io/v1", "leases", "default", "stagegraph-demo-dev-lock") is None
    outputs = cluster_records(fake)["02-infrastructure"]["outputs"]
    assert (outputs["kubeconfig_path"], outputs["kube_context"]) == (str(first), "fake")
    assert outputs["cluster_name"] == "fake"
    # The stages after 02 reach the cluster through what 02 recorded (the fake answers).
    assert preflight_lines(InfrastructureOutputs.model_validate(outputs)) == [
        f"cluster runs Kubernetes 1.31 (newest supported: {LOCK.kubernetes.max_version.version})"
    ]
    # The rendered stage holds no machine path: it stays the same for every user.
    rendered = next(p.root.rglob("02-infrastructure/existing/main.tf.json")).read_text()
    assert str(tmp_path) not in rendered and "${var.kubeconfig_path}" in rendered
    backend = json.loads(next(p.root.rglob("02-infrastructure/existing/backend.tf.json")).read_text())
    assert backend["terraform"]["backend"] == {
        "kubernetes": {
            "load_config_file": True,
            "namespace": "default",
            "secret_suffix": "demo-dev-02-infrastructure",
        }
    }

    # Another KUBECONFIG is another input: 02 is stale, and re-applies to the new file.
    p.extra_env["KUBECONFIG"] = str(other)
    assert "var:kubeconfig_path: changed" in p.doit("why", "02-infrastructure").stdout
    p.doit("deploy", "--stop-at", "02-infrastructure")
    assert "02-infrastructure" in p.applied_in_last_run()
    outputs = cluster_records(fake)["02-infrastructure"]["outputs"]
    assert (outputs["kubeconfig_path"], outputs["kube_context"]) == (str(other), "other")

    # The config's context and file win over the environment.
    p.edit_config(lambda c: c.update(existing={"kube_context": "fake", "kubeconfig": "../kube/first.yaml"}))
    p.doit("deploy", "--stop-at", "02-infrastructure")
    outputs = cluster_records(fake)["02-infrastructure"]["outputs"]
    assert (outputs["kubeconfig_path"], outputs["kube_context"]) == (str(first), "fake")

    # A context that is not there: one line naming the file and the context, nothing applied.
    p.edit_config(lambda c: c.update(existing={"kube_context": "prod"}))
    proc = p.doit("deploy", "--stop-at", "02-infrastructure", check=False)
    assert proc.returncode != 0
    assert (
        f"kubeconfig {other} (from the KUBECONFIG environment variable): existing.kube_context in "
        "nebari-config.yaml: 'prod' is not a context there (contexts: other)"
    ) in proc.stdout + proc.stderr
