"""`doit upgrade`: bring a config forward to the format this release reads.

Comment-preserving (ruamel.yaml round trip: comments, key order and quoting survive), with
the old file kept byte for byte as `<config>.<old version>.backup` and a unified diff of
the change returned for printing. Steps run in version order from the config's version to
`CURRENT`; the deploy actions they record are saved in the deployment's state folder.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagegraph.upgrade.model import Decision, DeployAction, StepContext, UpgradeError, get_path
from stagegraph.upgrade.steps import DECISIONS, steps_between
from stagegraph.upgrade.versions import CURRENT, is_version, parse

IMAGE_TAGS = Decision(
    "image-tags",
    ("bump", "keep"),
    "Nebari's own images (quay.io/nebari/nebari-jupyterhub, -jupyterlab, -dask-worker) pinned in "
    "the config move to the new release's tag",
    default="bump",
)
ALL_DECISIONS: tuple[Decision, ...] = (*DECISIONS, IMAGE_TAGS)
_NEBARI_IMAGE = re.compile(
    r"^(quay\.io/nebari/nebari-(?:jupyterhub|jupyterlab|dask-worker)(?:-gpu)?):(\d{4}\.\d+\.\d+)$"
)


@dataclass
class UpgradeResult:
    start: str
    finish: str
    steps: list[str]
    old_text: str
    new_text: str
    backup: Path | None
    diff: str
    notes: list[str] = field(default_factory=list)
    actions: list[DeployAction] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text


def parse_decisions(values: list[str]) -> dict[str, str]:
    """`["name:value", ...]` from `--decide`, checked against the known decisions.

    A colon, because doit reads a bare `name=value` argument as one of its own variables.
    """
    known = {d.name: d for d in ALL_DECISIONS}
    out: dict[str, str] = {}
    for raw in values:
        name, eq, value = raw.partition(":")
        if not eq or name not in known:
            raise UpgradeError(
                f"--decide {raw}: expected NAME:VALUE with NAME one of {', '.join(sorted(known))}"
            )
        if value not in known[name].choices:
            raise UpgradeError(f"--decide {raw}: {name} takes {', '.join(known[name].choices)}")
        out[name] = value
    return out


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # add no line breaks; unchanged sections keep their own (_keep_unchanged)
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _start_version(config: MutableMapping[str, Any], explicit: str, name: str) -> str:
    if "qhub_version" in config and "nebari_version" not in config:
        keys = list(config.keys())
        position = keys.index("qhub_version")
        value = str(config["qhub_version"])
        del config["qhub_version"]
        config.insert(position, "nebari_version", value)  # type: ignore[attr-defined]
    found = config.get("nebari_version")
    start = explicit or (str(found) if found is not None else "")
    if not start:
        raise UpgradeError(
            f"{name}: nebari_version: missing, so the release that wrote the file is unknown; "
            "pass it with `doit upgrade --from VERSION` (e.g. --from 2024.6.1)"
        )
    if not is_version(start):
        raise UpgradeError(f"{name}: nebari_version: {start!r} is not a release version such as 2024.6.1")
    if parse(start) > parse(CURRENT):
        raise UpgradeError(
            f"{name}: nebari_version: {start} is newer than {CURRENT}; install a newer stagegraph"
        )
    return start


def _bump_images(ctx: StepContext, finish: str) -> None:
    paths: list[tuple[MutableMapping[str, Any], Any]] = []
    images = ctx.config.get("default_images")
    if isinstance(images, MutableMapping):
        paths.extend((images, k) for k in list(images))
    for profile in get_path(ctx.config, "profiles.jupyterlab", []) or []:
        override = profile.get("kubespawner_override") if isinstance(profile, Mapping) else None
        if isinstance(override, MutableMapping) and "image" in override:
            paths.append((override, "image"))
    workers = get_path(ctx.config, "profiles.dask_worker", {}) or {}
    for worker in workers.values() if isinstance(workers, Mapping) else []:
        if isinstance(worker, MutableMapping) and "image" in worker:
            paths.append((worker, "image"))
    legacy = sorted(
        {str(h[k]) for h, k in paths if isinstance(h[k], str) and h[k].startswith("quansight/qhub-")}
    )
    if legacy:
        ctx.note(
            f"QHub images stay as they are ({', '.join(legacy)}); they predate this release: delete "
            "those keys to use the images pinned in lockfiles/versions.yaml"
        )
    stale = [
        (holder, key)
        for holder, key in paths
        if isinstance(holder[key], str)
        and (m := _NEBARI_IMAGE.match(holder[key])) is not None
        and m.group(2) != finish
    ]
    if stale and ctx.decide(IMAGE_TAGS) == "bump":
        for holder, key in stale:
            image = _NEBARI_IMAGE.match(holder[key])
            assert image is not None
            holder[key] = f"{image.group(1)}:{finish}"


def upgrade_text(
    text: str,
    config_path: Path,
    decisions: Mapping[str, str],
    from_version: str = "",
    finish: str = CURRENT,
    make_root_password: Callable[[], dict[str, str]] | None = None,
) -> tuple[str, StepContext, list[str]]:
    """The upgraded text (pure: no file is read or written), the step context and steps run."""
    yaml = _yaml()
    try:
        config = yaml.load(text)
    except Exception as exc:  # ruamel raises many YAMLError subclasses and ValueErrors
        raise UpgradeError(
            f"{config_path.name}: cannot read the YAML ({type(exc).__name__}); fix it first"
        ) from None
    if not isinstance(config, MutableMapping):
        raise UpgradeError(f"{config_path.name}: the top level is not a mapping; nothing to upgrade")
    start = _start_version(config, from_version, config_path.name)
    ctx = StepContext(
        config=config,
        config_path=config_path,
        decisions=decisions,
        start_version=start,
        make_root_password=make_root_password,
    )
    ran: list[str] = []
    for step in steps_between(start, finish):
        ctx.version = step.version
        step.run(ctx)
        ctx.config["nebari_version"] = step.version
        ran.append(step.version)
    ctx.version = finish
    _bump_images(ctx, finish)
    unused = sorted(set(decisions) - ctx.used_decisions)
    if unused:
        raise UpgradeError(
            f"--decide {unused[0]}: no step from {start} to {finish} asks for it; leave it out"
        )
    out = io.StringIO()
    yaml.dump(config, out)
    return keep_unchanged(text, out.getvalue()), ctx, ran


def _top_level_blocks(text: str) -> tuple[str, list[tuple[str, str]]]:
    """A header (comments before the first key) and (key, text) per top-level key."""
    header: list[str] = []
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines(keepends=True):
        starts_key = line[:1] not in ("", " ", "\t", "#", "-", "\n", "\r") and ":" in line
        if starts_key:
            blocks.append((line.split(":", 1)[0].strip().strip("'\""), [line]))
        elif blocks:
            blocks[-1][1].append(line)
        else:
            header.append(line)
    return "".join(header), [(k, "".join(lines)) for k, lines in blocks]


def keep_unchanged(old: str, new: str) -> str:
    """`new`, with every top-level section whose value did not change taken from `old` verbatim.

    A ruamel round trip keeps comments, order and quotes, but re-flows long plain scalars
    (a theme's welcome text); sections a step did not touch keep their exact bytes.
    """
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        old_data = yaml.load(old, Loader=loader)  # noqa: S506 - a safe loader
        new_data = yaml.load(new, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return new
    if not isinstance(old_data, dict) or not isinstance(new_data, dict):
        return new
    old_header, old_blocks = _top_level_blocks(old)
    _, new_blocks = _top_level_blocks(new)
    originals = dict(old_blocks)
    if len(originals) != len(old_blocks) or set(originals) != {str(k) for k in old_data}:
        return new  # a layout this splitter does not understand: keep ruamel's text
    parts = [old_header]
    for key, block in new_blocks:
        same = key in originals and key in old_data and old_data.get(key) == new_data.get(key)
        parts.append(originals[key] if same else block)
    return "".join(parts)


def upgrade_file(
    path: Path, decisions: Mapping[str, str], from_version: str = "", display: str | None = None
) -> UpgradeResult:
    """Upgrade the config at `path` in place, keeping `<name>.<old>.backup` byte for byte."""
    from stagegraph.atomic import write_atomic

    name = display or path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UpgradeError(f"{name}: cannot read the config ({exc.strerror or exc})") from None
    old = raw.decode("utf-8", errors="strict")
    made: list[str] = []

    def root_password() -> dict[str, str]:
        from stagegraph.sops.init import init_root_password_secret

        return init_root_password_secret(path.parent, notes=made)

    new, ctx, ran = upgrade_text(old, path, decisions, from_version, make_root_password=root_password)
    ctx.notes.extend(made)
    result = UpgradeResult(
        start=ctx.start_version,
        finish=CURRENT,
        steps=ran,
        old_text=old,
        new_text=new,
        backup=None,
        diff="",
        notes=ctx.notes,
        actions=ctx.actions,
    )
    if not ran and not result.changed:
        return result
    backup = path.with_name(f"{path.name}.{ctx.start_version}.backup")
    if backup.exists() and backup.read_bytes() != raw:
        raise UpgradeError(
            f"{backup}: a different backup is already there; move it away and run `doit upgrade` again"
        )
    for target in ctx.files:
        if target.exists():
            raise UpgradeError(f"{target}: already exists; move it away and run `doit upgrade` again")
    mode = path.stat().st_mode & 0o777  # the backup is as private as the config it copies
    write_atomic(backup, raw, mode)
    write_atomic(path, new, mode)
    for target, text in ctx.files.items():
        write_atomic(target, text)
    result.backup = backup
    result.files = sorted(ctx.files)
    result.diff = "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=backup.name,
            tofile=path.name,
        )
    )
    return result
