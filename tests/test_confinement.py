"""Files in a deployment folder are untrusted: none of them makes stagegraph write or delete
anything outside its folders (issue 12 items 1 and 3).

The end-to-end tests run `doit` in a deployment folder under tmp_path, outside this
repository, with a victim file next to it; every attack must leave the victim as it was.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest
from sandboxproject import SandboxProject

from stagegraph.confine import OutsideError, inside
from stagegraph.kube.apply import FIELD_MANAGER, ManifestError, ObjectRef, delete_object
from stagegraph.render import MANIFEST, RenderedStage, serialize, write_stage
from stagegraph.schema.tool import StagegraphSettings


def _rendered(files: dict[str, object]) -> RenderedStage:
    return RenderedStage(
        "09-test",
        PurePosixPath("09-test"),
        {k: serialize(v) for k, v in files.items()},
        {"code": "d"},  # type: ignore[arg-type]
    )


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_a_tampered_manifest_cannot_delete_outside_the_stage_folder(
    tmp_path: Path, victim: Path, kind: str
) -> None:
    out = tmp_path / "deploy" / "stages"
    write_stage(out, _rendered({"main.tf.json": {"a": 1}}))
    manifest = out / "09-test" / MANIFEST
    data = json.loads(manifest.read_text())
    name = "../../../victim.txt" if kind == "relative" else str(victim)
    data["files"][name] = "0" * 20
    manifest.write_text(json.dumps(data))
    with pytest.raises(OutsideError, match=r"\.stagegraph-render\.json: files: .*victim\.txt.* is outside"):
        write_stage(out, _rendered({"main.tf.json": {"a": 2}}))
    assert victim.read_text() == "precious\n"


def test_a_symlinked_folder_inside_the_stage_cannot_lead_out(tmp_path: Path, victim: Path) -> None:
    out = tmp_path / "deploy" / "stages"
    write_stage(out, _rendered({"main.tf.json": {"a": 1}}))
    (out / "09-test" / "sub").symlink_to(tmp_path)
    manifest = out / "09-test" / MANIFEST
    data = json.loads(manifest.read_text())
    data["files"]["sub/victim.txt"] = "0" * 20
    manifest.write_text(json.dumps(data))
    with pytest.raises(OutsideError, match="symlink"):
        write_stage(out, _rendered({"main.tf.json": {"a": 1}}))
    with pytest.raises(OutsideError, match="symlink"):
        write_stage(out, _rendered({"main.tf.json": {"a": 1}, "sub/victim.txt": "x"}))
    assert victim.read_text() == "precious\n"


def test_a_stage_folder_that_is_a_symlink_out_is_refused(tmp_path: Path, victim: Path) -> None:
    out = tmp_path / "deploy" / "stages"
    out.mkdir(parents=True)
    (out / "09-test").symlink_to(tmp_path)
    with pytest.raises(OutsideError, match="symlink"):
        write_stage(out, _rendered({"victim.txt": "overwritten"}))
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("name", ["", "/etc/passwd", "a/../../b", "..", ".", "C:\\x", "\\\\host\\share"])
def test_inside_refuses_every_way_out(tmp_path: Path, name: str) -> None:
    with pytest.raises(OutsideError):
        inside(tmp_path, name, "somefile")


@pytest.mark.parametrize(
    "value",
    ["../../../../tmp/x", "/tmp/x", ".", "./", ".stagegraph", ".stagegraph/stages", "a/../..", "secrets"],
)
def test_output_directory_must_stay_in_the_deployment_folder(value: str) -> None:
    with pytest.raises(ValueError, match="must be a folder inside the deployment folder"):
        StagegraphSettings.model_validate({"output_directory": value})


def test_output_directory_may_be_any_folder_below() -> None:
    assert StagegraphSettings.model_validate({"output_directory": "deploy/stages/"}).output_directory == (
        "deploy/stages"
    )


class _FakeCluster:
    """A fake of the two API calls `delete_object` makes, holding one namespace."""

    def __init__(self, managers: list[str]) -> None:
        self.obj = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "kube-system", "managedFields": [{"manager": m} for m in managers]},
        }
        self.deleted = False

    def request(self, method: str, path: str, **_: object) -> dict[str, object]:
        if method == "DELETE":
            self.deleted = True
        return self.obj


class _Resolver:
    def path(self, ref: ObjectRef, source: str) -> str:
        return f"/api/v1/namespaces/{ref.name}"


def test_an_inventory_cannot_make_stagegraph_delete_an_object_it_never_applied() -> None:
    ref = ObjectRef("v1", "Namespace", None, "kube-system")
    theirs = _FakeCluster(["kubectl-client-side-apply"])
    with pytest.raises(ManifestError, match="never applied it"):
        delete_object(theirs, _Resolver(), ref)  # type: ignore[arg-type]
    assert not theirs.deleted
    ours = _FakeCluster([FIELD_MANAGER])
    assert delete_object(ours, _Resolver(), ref) is True  # type: ignore[arg-type]
    assert ours.deleted


# --- end to end, from a deployment folder outside the repository ------------------------------


def _one_line_error(proc: object) -> str:
    out = getattr(proc, "stdout", "") + getattr(proc, "stderr", "")
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert "Traceback" not in out, out
    assert errors, out
    return errors[0]


def test_render_from_a_tmp_folder_never_deletes_outside_it(tmp_path: Path, victim: Path) -> None:
    project = SandboxProject.create(tmp_path / "deploy")
    project.doit("render")
    stage = project.root / "stages" / "01-terraform-state"
    manifest = next(stage.rglob(MANIFEST))
    data = json.loads(manifest.read_text())
    data["files"]["../../../../victim.txt"] = "0" * 20
    data["files"][str(victim)] = "0" * 20
    data["inputs_digest"] = "changed"  # so render rewrites this stage
    manifest.write_text(json.dumps(data))
    proc = project.doit("render", check=False)
    assert proc.returncode != 0
    assert "is outside" in _one_line_error(proc)
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("value", ["../outside", str(Path("/tmp") / "stagegraph-outside-test")])
def test_output_directory_outside_is_refused_before_anything_is_written(tmp_path: Path, value: str) -> None:
    project = SandboxProject.create(tmp_path / "deploy")
    project.edit_config(lambda c: c.setdefault("stagegraph", {}).update(output_directory=value))
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = project.doit("render", check=False)
    assert proc.returncode != 0
    assert "stagegraph.output_directory" in _one_line_error(proc)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not Path("/tmp/stagegraph-outside-test").exists()


def test_a_symlinked_output_directory_is_refused(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "deploy")
    (tmp_path / "elsewhere").mkdir()
    (project.root / "stages").symlink_to(tmp_path / "elsewhere")
    proc = project.doit("render", check=False)
    assert proc.returncode != 0
    assert "leads outside the deployment folder" in _one_line_error(proc)
    assert list((tmp_path / "elsewhere").iterdir()) == []
