"""Stages that left the graph: applied once, and no stage of that name exists any more.

A plugin disabled in `stagegraph.plugins.enabled` (or uninstalled) takes its stages out of
the graph, but not their resources: the record and the rendered folder with its Terraform
state stay behind. Deploys refuse while such an orphan exists (its resources would be left
running unnoticed), `status` lists them, and `doit destroy_orphans` destroys them.

The stage's code is gone, so the destroy works from the files on disk alone: the rendered
folder and its state. Those files are input like any other, so nothing here trusts them:

- the folder is `<output root>/<stage>[/<provider>]` (the stage name comes from a record
  file name, which the record store keeps to one safe path component); no part of that
  path may be a symbolic link, and the render manifest there must name the stage;
- the rendered files and the variables file must be exactly those of the last successful
  apply (their digests are in the record), so what runs is what was applied;
- a render that would run commands or reach files outside its folder during a destroy
  (provisioners, `external` data sources, modules, a backend) is refused, as is a stage
  applied by its own driver or with secret variables: only its plugin can destroy those;
- after a successful destroy the folder is removed, and nothing outside it is ever touched.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from stagegraph.driver import TERRAFORM, TFVARS, StageContext
from stagegraph.errors import DeployError, StagegraphError
from stagegraph.fingerprint import value_digest
from stagegraph.render import BACKEND_FILE, file_digest, read_manifest
from stagegraph.stage import Stage

if TYPE_CHECKING:
    from stagegraph.deploy import Runtime
    from stagegraph.project import Project
    from stagegraph.records import StageRecord

TASK = "destroy_orphans"
INVENTORY = ".stagegraph-applied.json"  # the manifest driver's list of applied objects
#: Files Terraform reads or writes in the folder: none may lead elsewhere through a link.
_TERRAFORM_FILES = (
    "terraform.tfstate",
    "terraform.tfstate.backup",
    ".terraform",
    ".terraform.lock.hcl",
    TFVARS,
)


@dataclass(frozen=True)
class Orphan:
    """A stage with a record of resources that may exist, and no place in the graph."""

    stage: str
    record: StageRecord

    @property
    def plugin(self) -> str | None:
        source = self.record.source
        return source if source and source != "stagegraph" else None


class OrphanedStagesError(DeployError):
    """Applying while stages that left the graph still have resources."""

    def __init__(self, orphans: Iterable[Orphan], config_name: str) -> None:
        orphans = list(orphans)
        names = ", ".join(o.stage for o in orphans)
        plugins = sorted({o.plugin for o in orphans if o.plugin})
        which = f"plugin {', '.join(plugins)}" if plugins else "the plugin that brought it"
        super().__init__(
            f"{'stage' if len(orphans) == 1 else 'stages'} {names} applied but no longer in the graph "
            f"(plugin disabled or uninstalled), nothing applied: destroy with `doit {TASK}`, or enable "
            f"{which} again in {config_name} (stagegraph.plugins)"
        )


def _maybe_left(project: Project, name: str, record: StageRecord) -> bool:
    """Resources may exist: applied once, or a failed first apply that left state behind."""
    if record.status == "destroyed":
        return False
    if record.applied_at is not None:
        return True
    try:
        folder = stage_folder(project, name)
    except DeployError:
        return True  # something is there, and it is odd: let the destroy explain
    return folder is not None and ((folder / "terraform.tfstate").exists() or (folder / INVENTORY).exists())


def find_orphans(project: Project, graph_names: Iterable[str]) -> list[Orphan]:
    """Every record of a stage not in the graph whose resources may still exist, by name."""
    names = set(graph_names)
    records, _unreadable = project.records.scan()  # `status` lists unreadable ones as unknown
    return [
        Orphan(name, record)
        for name, record in sorted(records.items())
        if name not in names and _maybe_left(project, name, record)
    ]


def refuse_orphans(project: Project, graph_names: Iterable[str]) -> None:
    orphans = find_orphans(project, graph_names)
    if orphans:
        raise OrphanedStagesError(orphans, project.config_name)


# --- the folder on disk --------------------------------------------------------------------


def _no_link(root: Path, path: Path) -> None:
    """Refuse a path under `root` that passes through a symbolic link."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            raise DeployError(
                f"{current}: is a symbolic link; an orphaned stage is destroyed only from files "
                f"inside {root}: replace the link with the stage's own folder"
            )


def stage_folder(project: Project, name: str) -> Path | None:
    """The rendered folder of stage `name` (per-provider subfolder first), or None."""
    root = project.output_root
    for candidate in (root / name / project.config.provider, root / name):
        if candidate.is_symlink() or candidate.exists():
            _no_link(root, candidate)
            manifest = read_manifest(candidate)
            if manifest is not None and manifest.get("stage") == name:
                return candidate
    return None


def _recorded_files(folder: Path, record: StageRecord) -> list[str]:
    """The rendered files of the last apply, each checked against the record's digest."""
    names = []
    for key, digest in sorted(record.inputs.items()):
        if not key.startswith("file:"):
            continue
        name = key.removeprefix("file:")
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise DeployError(f"{folder}: the record of {record.stage} names a file outside it ({name!r})")
        path = folder / rel
        _no_link(folder, path)
        try:
            now = file_digest(path.read_bytes())
        except OSError:
            now = "missing"
        if now != digest:
            raise DeployError(
                f"{path}: {'missing' if now == 'missing' else 'differs from the render applied last'}; "
                f"an orphan is destroyed only from its recorded render: restore it (git checkout), "
                f"or enable its plugin again and run `doit destroy:{record.stage}`"
            )
        names.append(name)
    return names


#: What a destroy would run or reach beyond the folder: refused in an orphan's render.
def _outside_reach(doc: Mapping[str, Any]) -> list[str]:
    found = []
    backend = doc.get("terraform", {})
    blocks = backend if isinstance(backend, list) else [backend]
    if any(isinstance(b, Mapping) and b.get("backend") for b in blocks):
        found.append("a backend")
    if doc.get("module"):
        found.append("modules")
    data = doc.get("data", {})
    if isinstance(data, Mapping) and "external" in data:
        found.append("an external data source")
    for by_name in (doc.get("resource") or {}).values():
        for body in (by_name or {}).values() if isinstance(by_name, Mapping) else ():
            bodies = body if isinstance(body, list) else [body]
            if any(isinstance(b, Mapping) and "provisioner" in b for b in bodies):
                found.append("provisioners")
    return sorted(set(found))


def _configured_backend(project: Project, folder: Path, stage: str) -> dict[str, Any] | None:
    """The backend the config gives a stage of this name in this folder, as rendered."""
    from stagegraph.stages.cloud.names import remote_backend

    found = remote_backend(project.config, folder.relative_to(project.output_root).as_posix(), stage)
    return None if found is None else {found[0]: found[1]}


def _is_backend(doc: Mapping[str, Any], backend: Mapping[str, Any] | None) -> bool:
    """The backend file holds exactly `backend` and nothing else Terraform reads."""
    return (
        backend is not None
        and set(doc) <= {"//", "terraform"}
        and doc.get("terraform") == {"backend": backend}
    )


def _check_render(folder: Path, files: list[str], stage: str, backend: Mapping[str, Any] | None) -> None:
    """Refuse what would reach beyond the folder; the one backend allowed is the config's own
    (a committed render could otherwise point the destroy at another deployment's state)."""
    for name in files:
        if not name.endswith(".tf.json"):
            continue
        try:
            doc = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise DeployError(f"{folder / name}: not readable Terraform JSON") from None
        if name == BACKEND_FILE and isinstance(doc, Mapping) and _is_backend(doc, backend):
            continue
        reach = _outside_reach(doc) if isinstance(doc, Mapping) else ["not a JSON object"]
        if reach:
            raise DeployError(
                f"{folder / name}: has {', '.join(reach)}, which a destroy would run beyond the stage's "
                f"folder; only its plugin can destroy {stage}: enable it again and run `doit destroy:{stage}`"
            )


def _recorded_variables(folder: Path, record: StageRecord) -> dict[str, Any]:
    """The variables of the last apply (the variables file), checked against the record."""
    wanted = {k.removeprefix("var:"): v for k, v in record.inputs.items() if k.startswith("var:")}
    secrets = sorted(k.removeprefix("secret:") for k in record.inputs if k.startswith("secret:"))
    if secrets:
        raise DeployError(
            f"stage {record.stage} reads secret variables ({', '.join(secrets)}) that only its plugin "
            f"can resolve; enable the plugin again and run `doit destroy:{record.stage}`"
        )
    if not wanted:
        return {}
    path = folder / TFVARS
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        values = None
    if not isinstance(values, dict) or {k: value_digest(v) for k, v in values.items()} != wanted:
        raise DeployError(
            f"{path}: missing or not the variables of the last apply of {record.stage}; restore it, or "
            f"enable its plugin again and run `doit destroy:{record.stage}`"
        )
    return values


# --- destroying ----------------------------------------------------------------------------


def _stand_in(name: str) -> Stage:
    """A Stage value for the engine's bookkeeping (records, console); its code is gone."""

    def no_render(_: Any) -> dict[str, Any]:
        raise DeployError(f"stage {name} left the graph: it cannot be rendered")

    return Stage(name=name, description="stage no longer in the graph", render=no_render)


def _remove_folder(project: Project, folder: Path) -> None:
    """Remove the destroyed stage's folder, and its stage-name parent once empty."""
    root = project.output_root
    _no_link(root, folder)
    shutil.rmtree(folder)
    parent = folder.parent
    if parent != root and parent.parent == root and not any(parent.iterdir()):
        parent.rmdir()


def destroy_orphan(rt: Runtime, orphan: Orphan) -> None:
    """Destroy one orphan from its recorded render and state, then forget its folder."""
    from stagegraph.deploy import _log_path, _progress_filter, now, record_failure

    project = rt.project
    name = orphan.stage
    stage = _stand_in(name)
    started, t0 = now(), time.monotonic()
    rt.console.start(name)
    ctx: StageContext | None = None
    try:
        folder = stage_folder(project, name)
        if folder is None:
            raise DeployError(
                f"{project.output_root / name}: no rendered folder of {name} (its render and state); "
                f"restore it, or if its resources are gone delete {project.records.path(name)}"
            )
        for entry in _TERRAFORM_FILES:
            _no_link(folder, folder / entry)
        inventory = _inventory_count(folder)
        files = _recorded_files(folder, orphan.record)
        if inventory or not any(f.endswith(".tf.json") for f in files):
            raise DeployError(
                f"stage {name} was applied by its own driver ({orphan.record.runner or 'not Terraform'}), "
                f"which left with its plugin; enable the plugin again and run `doit destroy:{name}`"
            )
        configured = _configured_backend(project, folder, name)
        _check_render(folder, files, name, configured)
        variables = _recorded_variables(folder, orphan.record)
        # What _check_render let through: the config's own backend, or none.
        backend = next(iter(configured)) if configured is not None and BACKEND_FILE in files else None
        from stagegraph.console import LineWriter
        from stagegraph.sharedstate import backend_env

        ctx = StageContext(
            stage=stage,
            stage_dir=folder,
            provider=project.config.provider,
            variables=variables,
            secret_env=backend_env(project, name, backend) if backend is not None else {},
            record=orphan.record,
            log_path=_log_path(project, name, "destroy"),
            line=_progress_filter(LineWriter(rt.console, name).write_line),
            terraform_binary=rt.binary,
        )
        # A stage whose state is in a backend has no local state file and still has resources.
        if backend is not None or (folder / "terraform.tfstate").exists():
            TERRAFORM.destroy(ctx)
        _remove_folder(project, folder)
    except StagegraphError as exc:
        record_failure(
            rt, stage, started, time.monotonic() - t0, exc, ctx.log_path if ctx else None, "destroy failed: "
        )
        raise
    duration = time.monotonic() - t0
    project.records.record_destroyed(
        name, attempted_at=started, duration_s=duration, log=ctx.log_path if ctx else None
    )
    rt.summary.add(name, "destroyed", duration, "no longer in the graph")
    rt.console.finish(name, "destroyed (left the graph)", duration)


def _inventory_count(folder: Path) -> int:
    try:
        data = json.loads((folder / INVENTORY).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        return 1  # unreadable: treat as objects we cannot account for
    objects = data.get("objects") if isinstance(data, dict) else None
    return len(objects) if isinstance(objects, list) else 1


def destroy_orphans(rt: Runtime, graph_names: Iterable[str], only: Iterable[str] = ()) -> list[str]:
    """Destroy every orphan (or those named), last name first; stop at the first failure.

    Records keep no dependencies, so the order follows Nebari's numbered names, in reverse:
    a stage numbered after another is destroyed before it, as `doit destroy` would.
    """
    orphans = find_orphans(rt.project, graph_names)
    wanted = list(only)
    known = {o.stage for o in orphans}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        raise DeployError(f"{', '.join(unknown)}: not an orphaned stage (orphans: {have}); see `doit status`")
    chosen = [o for o in orphans if not wanted or o.stage in wanted]
    for orphan in sorted(chosen, key=lambda o: o.stage, reverse=True):
        destroy_orphan(rt, orphan)
    return [o.stage for o in chosen]
