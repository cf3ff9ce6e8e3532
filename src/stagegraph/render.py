"""Render stages to files, deterministically, and write them without leaving a half stage.

`render_stage` is pure: config + lockfile in, file contents out. `write_stage` is the only
writer: it stages every new file next to its target, renames them into place, records what
it wrote in a manifest, and only then removes files it wrote before that are gone from the
new render. Files it did not write (Terraform state, `.terraform/`, the variables file of
a deploy) are never touched.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from stagegraph.atomic import write_atomic
from stagegraph.confine import OutsideError, inside, is_within
from stagegraph.errors import RenderError
from stagegraph.lockfile import Lockfile, pin_digest
from stagegraph.stage import RenderContext, Stage
from stagegraph.tfjson import variables_document
from stagegraph.views import PinView, SliceView, allow_tree, slice_values

if TYPE_CHECKING:
    from stagegraph.schema.config import NebariConfig

MANIFEST = ".stagegraph-render.json"
VARIABLES_FILE = "variables.tf.json"
BACKEND_FILE = "backend.tf.json"
#: The stage that creates the state store keeps its own state locally (Nebari does too).
STATE_STAGE = "01-terraform-state"


@dataclass(frozen=True)
class RenderedStage:
    stage: str
    directory: PurePosixPath
    files: Mapping[str, bytes]
    inputs: Mapping[str, str]

    @property
    def digest(self) -> str:
        return _digest(dict(self.inputs))


def serialize(content: dict[str, Any] | str) -> bytes:
    """Canonical bytes: sorted keys, two-space indent, trailing newline."""
    if isinstance(content, str):
        text = content if content.endswith("\n") else content + "\n"
        return text.encode("utf-8")
    return (json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:20]


@cache
def _source_digest(module_name: str) -> str:
    module = sys.modules[module_name]
    path = inspect.getsourcefile(module)
    data = Path(path).read_bytes() if path else module_name.encode()
    return hashlib.sha256(data).hexdigest()[:20]


@cache
def code_closure(module_name: str) -> tuple[str, ...]:
    """The modules a render's code can reach: its module and what that imports, transitively.

    Followed through module globals (imported modules, and functions/classes by their
    `__module__`), limited to stagegraph's own modules and the render's own package (a
    plugin's). An edit to any helper a stage renders through re-renders that stage.
    """
    root = module_name.split(".")[0]
    seen: set[str] = set()
    todo = [module_name]
    while todo:
        name = todo.pop()
        module = sys.modules.get(name)
        if name in seen or module is None:
            continue
        seen.add(name)
        for value in vars(module).values():
            dep = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
            if (
                isinstance(dep, str)
                and dep not in seen
                and (dep.startswith("stagegraph.") or dep.split(".")[0] == root)
            ):
                todo.append(dep)
    return tuple(sorted(seen))


#: Shared code every render goes through: a change here re-renders every stage.
_SHARED_MODULES = ("stagegraph.render", "stagegraph.tfjson", "stagegraph.stage", "stagegraph.views")


def render_inputs(stage: Stage, config: NebariConfig, lock: Lockfile) -> dict[str, str]:
    """Digest of each thing a render reads: config sections, pins, provider and code."""
    inputs: dict[str, str] = {"provider": config.provider}
    for path, value in slice_values(config, stage.config_sections).items():
        inputs[f"config:{path}"] = _digest(value)
    for key in stage.pins:
        inputs[f"pin:{key}"] = pin_digest(lock.pin(key, user=f"stage {stage.name}"))
    modules = sorted({*code_closure(stage.render.__module__), *_SHARED_MODULES})
    inputs["code"] = _digest([_source_digest(m) for m in modules if m in sys.modules])
    if config.stagegraph.rehearse:
        inputs["rehearse"] = "true"
    backend = stage_backend(stage, config)
    if backend is not None:
        inputs["backend"] = _digest(backend)
    return inputs


def stage_backend(stage: Stage, config: NebariConfig) -> dict[str, Any] | None:
    """The `terraform { backend }` document of a stage directory, or None for local state.

    Rendered into every Terraform stage after 01, so `terraform init` in a stage directory
    finds the remote state by itself. Offline runs (sandbox, rehearsal) keep local state,
    except that a backend the user already runs (`terraform_state.type: existing`) holds every
    stage's state, 01's and the sandbox's included: it exists before 01, and a team sharing
    the deployment needs all of it there (a rehearsal still keeps its own).
    """
    existing = config.terraform_state.type == "existing" and not config.stagegraph.rehearse
    # Manifest stages go through Terraform where no cluster is (the sandbox): their state too.
    if stage.kind != "terraform" and not (existing and stage.kind == "manifests"):
        return None
    # `existing` with `type: remote`: the cluster holds every stage's state, 01's included
    # (it exists before 01, as a backend the user runs does).
    in_cluster = config.provider == "existing" and config.terraform_state.type == "remote"
    if not existing and ((stage.name == STATE_STAGE and not in_cluster) or config.offline):
        return None
    from stagegraph.stages.cloud.names import remote_backend

    found = remote_backend(config, str(stage.directory(config.provider)), stage.name)
    if found is None:
        return None
    kind, body = found
    where = f"the store stage {STATE_STAGE} created"
    if kind == "kubernetes":
        # Its kubeconfig and context are the machine's (never rendered): say how to give them.
        where = (
            "a Secret in the cluster; by hand, export KUBE_CONFIG_PATH (and KUBE_CTX) for "
            "the cluster's kubeconfig (and context) first"
        )
    return {
        "//": f"State of {stage.name}: {where}. Generated by stagegraph.",
        "terraform": {"backend": {kind: body}},
    }


def render_stage(stage: Stage, config: NebariConfig, lock: Lockfile, lockfile: str) -> RenderedStage:
    """Pure render of one stage into file contents."""
    ctx = RenderContext(
        config=cast("NebariConfig", SliceView(config, allow_tree(stage.config_sections), stage.name)),
        pins=PinView(lock, stage.pins, stage.name, lockfile),
        provider=config.provider,
        rehearse=config.stagegraph.rehearse,
    )
    produced = dict(stage.render(ctx))
    files = {name: serialize(content) for name, content in sorted(produced.items())}
    backend = stage_backend(stage, config) if any(n.endswith(".tf.json") for n in files) else None
    if backend is not None:
        files[BACKEND_FILE] = serialize(backend)
    if stage.kind == "terraform" and any(n.endswith(".tf.json") for n in files):
        comment = f"Variables of {stage.name}, declared once from its typed inputs. Generated by stagegraph."
        sensitive = [(s.variable, s.description) for s in stage.sensitive]
        variables = variables_document(stage.inputs, sensitive, comment)
        if variables:
            files[VARIABLES_FILE] = serialize(variables)
    return RenderedStage(
        stage=stage.name,
        directory=stage.directory(config.provider),
        files=files,
        inputs=render_inputs(stage, config, lock),
    )


# --- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteResult:
    written: tuple[str, ...]
    removed: tuple[str, ...]


def read_manifest(stage_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((stage_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def hand_edits(stage_dir: Path) -> list[str]:
    """Rendered files whose content is no longer what the last render wrote (or gone)."""
    manifest = read_manifest(stage_dir) or {}
    edited = []
    for name, want in sorted(manifest.get("files", {}).items()):
        try:
            if file_digest((stage_dir / name).read_bytes()) != want:
                edited.append(name)
        except OSError:
            edited.append(name)
    return edited


def is_current(stage_dir: Path, digest: str) -> bool:
    """Up to date: same render inputs as the manifest, and no rendered file edited or lost."""
    manifest = read_manifest(stage_dir)
    if not manifest or manifest.get("inputs_digest") != digest:
        return False
    return not hand_edits(stage_dir)


def write_stage(out_root: Path, rendered: RenderedStage) -> WriteResult:
    """Write a rendered stage: all new files or none, then drop stale ones."""
    stage_dir = out_root / rendered.directory
    manifest_path = stage_dir / MANIFEST
    if not is_within(stage_dir, out_root):
        raise OutsideError(
            f"{stage_dir}: the stage folder leads outside {out_root} through a symlink; "
            "replace that link with a plain folder and render again"
        )
    for name in rendered.files:
        inside(stage_dir, name, f"stage {rendered.stage}'s render")
    old = read_manifest(stage_dir) or {}
    old_listed = old.get("files", {})
    # The manifest is committed with the render, so it is untrusted: every stale name must
    # stay inside the stage folder, checked before anything is written.
    stale = {
        name: inside(stage_dir, name, f"{manifest_path}: files")
        for name in (old_listed if isinstance(old_listed, dict) else {})
        if name not in rendered.files
    }
    changed = {
        name: data for name, data in rendered.files.items() if not _same_content(stage_dir / name, data)
    }
    staged: list[tuple[Path, Path]] = []
    try:
        for name, data in changed.items():
            target = stage_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            staged.append((Path(tmp_name), target))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp_name).chmod(0o644)
    except OSError as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise RenderError(f"{stage_dir}: cannot write rendered files: {exc.strerror}") from None
    for tmp, target in staged:
        tmp.replace(target)
    manifest = {
        "stage": rendered.stage,
        "inputs": dict(sorted(rendered.inputs.items())),
        "inputs_digest": rendered.digest,
        "files": {name: file_digest(data) for name, data in sorted(rendered.files.items())},
    }
    _write_manifest(stage_dir, manifest)
    for path in stale.values():
        if not path.is_dir() or path.is_symlink():
            path.unlink(missing_ok=True)
    return WriteResult(tuple(sorted(changed)), tuple(sorted(stale)))


def _same_content(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def _write_manifest(stage_dir: Path, manifest: dict[str, Any]) -> None:
    write_atomic(stage_dir / MANIFEST, serialize(manifest))
