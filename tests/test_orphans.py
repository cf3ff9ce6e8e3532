"""Stages that left the graph, as a user meets them through `python -m doit`.

The example plugin (plugins/examples/stagegraph-hello, imported from its source folder via
`stagegraph.plugins.import`) deploys its stage 045-hello on the sandbox with real Terraform;
then the config stops importing it. Deploy refuses naming the stage and the ways on,
`status` lists it, tampered or redirected files make the orphan destroy refuse without
touching anything, and `doit destroy_orphans` destroys it from its recorded render and
state, after which deploys go on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sandboxproject import ROOT, SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HELLO_SRC = ROOT / "plugins" / "examples" / "stagegraph-hello" / "src"
ORPHAN = "045-hello"


def folder_of(p: SandboxProject, name: str) -> Path | None:
    """The rendered folder of `name`, wherever the render root is (found by its manifest)."""
    for manifest in p.root.rglob(".stagegraph-render.json"):
        if json.loads(manifest.read_text()).get("stage") == name:
            return manifest.parent
    return None


def set_plugin(p: SandboxProject, on: bool) -> None:
    imports = ["stagegraph_hello.plugin"] if on else []
    p.edit_config(lambda c: c.setdefault("stagegraph", {}).update(plugins={"import": imports}))


def failure(p: SandboxProject, *args: str) -> str:
    proc = p.doit(*args, check=False)
    assert proc.returncode != 0, f"doit {' '.join(args)} should fail:\n{proc.stdout}"
    return proc.stdout + proc.stderr


def applied_at(p: SandboxProject) -> dict[str, Any]:
    return {name: r["applied_at"] for name, r in p.records().items()}


@pytest.fixture(scope="module")
def orphaned(tmp_path_factory: pytest.TempPathFactory) -> SandboxProject:
    """A sandbox deployment whose 045-hello was applied, then its plugin dropped from the config."""
    p = SandboxProject.create(tmp_path_factory.mktemp("orphans") / "p")
    p.extra_env["PYTHONPATH"] = str(HELLO_SRC)
    set_plugin(p, True)
    p.doit("deploy", "--stop-at", ORPHAN)
    assert p.records()[ORPHAN]["status"] == "applied"
    assert p.records()[ORPHAN]["source"] == "stagegraph_hello.plugin"
    set_plugin(p, False)
    return p


def test_deploy_refuses_naming_the_orphan_and_the_ways_on(orphaned: SandboxProject) -> None:
    p = orphaned
    before = applied_at(p)
    out = failure(p, "deploy")
    line = next(line for line in out.splitlines() if ORPHAN in line)
    assert line.endswith(
        "stage 045-hello applied but no longer in the graph (plugin disabled or uninstalled), nothing "
        "applied: destroy with `doit destroy_orphans`, or enable plugin stagegraph_hello.plugin again "
        "in nebari-config.yaml (stagegraph.plugins)"
    )
    # Nothing applied: every record is as it was (07 and later were never applied).
    assert applied_at(p) == before
    assert "07-kubernetes-services" not in p.records()
    # One stage alone is refused too: anything that applies.
    assert "no longer in the graph" in failure(p, "03-kubernetes-initialize")


def test_status_lists_the_orphan(orphaned: SandboxProject) -> None:
    rows = [line.split() for line in orphaned.doit("status").stdout.splitlines()]
    row = next(r for r in rows if r[0] == ORPHAN)
    assert row[1] == "orphaned"
    assert "`doit destroy_orphans` destroys it" in " ".join(row)


def test_tampered_render_is_refused_and_nothing_is_touched(orphaned: SandboxProject) -> None:
    p = orphaned
    folder = folder_of(p, ORPHAN)
    assert folder is not None
    main = folder / "main.tf.json"
    original = main.read_text()
    doc = json.loads(original)
    # A destroy-time command slipped into the recorded render after it was applied.
    resource = next(iter(doc["resource"]["terraform_data"].values()))
    resource["provisioner"] = {"local-exec": {"when": "destroy", "command": "touch ../../../pwned"}}
    main.write_text(json.dumps(doc))
    state = (folder / "terraform.tfstate").read_bytes()
    try:
        out = failure(p, "destroy_orphans")
        assert f"{main}: differs from the render applied last" in out
        assert (folder / "terraform.tfstate").read_bytes() == state
        assert p.records()[ORPHAN]["applied_at"] is not None
    finally:
        main.write_text(original)


def test_edited_variables_file_is_refused(orphaned: SandboxProject) -> None:
    folder = folder_of(orphaned, ORPHAN)
    assert folder is not None
    tfvars = folder / "stagegraph.tfvars.json"
    original = tfvars.read_text()
    tfvars.write_text(json.dumps({**json.loads(original), "namespace": "elsewhere"}))
    try:
        out = failure(orphaned, "destroy_orphans")
        assert f"{tfvars}: missing or not the variables of the last apply of 045-hello" in out
    finally:
        tfvars.write_text(original)


def test_a_stage_folder_that_links_elsewhere_is_refused(orphaned: SandboxProject, tmp_path: Path) -> None:
    p = orphaned
    folder = folder_of(p, ORPHAN)
    assert folder is not None
    outside = tmp_path / "outside"
    shutil.move(folder, outside)
    folder.symlink_to(outside, target_is_directory=True)
    listing = sorted(x.name for x in outside.iterdir())
    try:
        out = failure(p, "destroy_orphans")
        assert f"{folder}: is a symbolic link" in out
        assert sorted(x.name for x in outside.iterdir()) == listing  # nothing written or removed there
        assert "orphaned" in p.doit("status").stdout  # still known as an orphan
    finally:
        folder.unlink()
        shutil.move(outside, folder)


def test_destroy_orphans_destroys_it_then_deploy_goes_on(orphaned: SandboxProject) -> None:
    p = orphaned
    folder = folder_of(p, ORPHAN)
    assert folder is not None
    state = json.loads((folder / "terraform.tfstate").read_text())
    assert state["resources"], "the orphan has resources to destroy"
    out = p.doit("destroy_orphans").stdout
    assert "destroyed (left the graph)" in out
    record = p.records()[ORPHAN]
    assert record["status"] == "destroyed"
    log = Path(record["log"]).read_text()
    assert "Destroy complete" in log
    assert folder_of(p, ORPHAN) is None and not folder.exists()
    assert ORPHAN not in p.doit("status").stdout
    assert p.doit("destroy_orphans").stdout.strip().endswith("no stage left the graph: nothing to destroy")
    p.doit("deploy", "--stop-at", "05-kubernetes-keycloak")
    assert p.records()["05-kubernetes-keycloak"]["status"] == "applied"


def test_a_whole_destroy_destroys_orphans_first(tmp_path: Path) -> None:
    """A `.py` plugin imported from the config (as `import_plugin` plugins are), then dropped."""
    from plugin_helpers import write_plugin

    p = SandboxProject.create(tmp_path / "p")
    write_plugin(
        p.root,
        "marker",
        '@hookimpl\ndef stagegraph_stages():\n    yield stage("015-marker", ("01-terraform-state",), 15)\n',
    )
    p.edit_config(lambda c: c.setdefault("stagegraph", {}).update(plugins={"import": ["marker.py"]}))
    p.doit("deploy", "--stop-at", "02-infrastructure")
    assert {"01-terraform-state", "015-marker", "02-infrastructure"} <= set(p.records())
    p.edit_config(lambda c: c["stagegraph"].update(plugins={"import": []}))
    assert "015-marker" in failure(p, "deploy")

    p.doit("destroy")
    records = p.records()
    assert {name: r["status"] for name, r in records.items()} == {
        "01-terraform-state": "destroyed",
        "015-marker": "destroyed",
        "02-infrastructure": "destroyed",
    }
    # The orphan went first, before the stage it was built on.
    assert records["015-marker"]["attempted_at"] < records["01-terraform-state"]["attempted_at"]
    assert folder_of(p, "015-marker") is None
