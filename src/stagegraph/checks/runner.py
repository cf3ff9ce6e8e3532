"""Run every registered check over a render and collect the findings (`doit check`).

The render is made in memory from the config and lockfile, exactly as `doit render` would
write it (render is pure), so `doit check` needs no prior render and writes nothing but its
chart cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from stagegraph.checks import CheckRun, Finding, StageRender, registered_checks
from stagegraph.checks.charts import ChartStore

if TYPE_CHECKING:
    from stagegraph.graph import StageGraph
    from stagegraph.lockfile import Lockfile
    from stagegraph.schema.config import NebariConfig


@dataclass(frozen=True)
class CheckReport:
    findings: tuple[Finding, ...]
    checks: tuple[str, ...]
    stages: tuple[str, ...]

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "problem"]

    @property
    def skipped(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "skipped"]

    def lines(self) -> list[str]:
        """Per stage (runtime order), problems first, then what was skipped."""
        order = {name: i for i, name in enumerate(self.stages)}
        ranked = sorted(
            self.findings, key=lambda f: (order.get(f.stage, len(order)), f.kind != "problem", f.check)
        )
        return [f.line() for f in ranked]

    def summary(self) -> str:
        return (
            f"{len(self.problems)} problem(s), {len(self.skipped)} skipped, "
            f"{len(self.checks)} check(s) over {len(self.stages)} stage(s): {', '.join(self.checks)}"
        )


def render_all(graph: StageGraph, config: NebariConfig, lock: Lockfile, lockfile: str) -> list[StageRender]:
    from stagegraph.render import render_stage

    out = []
    for stage in graph.stages:
        rendered = render_stage(stage, config, lock, lockfile)
        out.append(StageRender(stage, rendered.directory, rendered.files))
    if config.provider != "sandbox":
        out.append(backup_render(config, lock, lockfile))
    return out


def backup_render(config: NebariConfig, lock: Lockfile, lockfile: str) -> StageRender:
    """What `doit backup` applies and `--restore latest` renders, checked as a manifest stage:
    no stage of the graph, but Kubernetes objects whose Secrets the stages must create."""
    from stagegraph.backup import platform_of, render_backup, to_yaml
    from stagegraph.backup_restore import render_restore
    from stagegraph.stage import Stage

    platform = platform_of(config, lock, lockfile)
    settings = config.stagegraph.backup
    files = {
        "backup.yaml": to_yaml(render_backup(settings, platform)).encode(),
        "restore-latest.yaml": to_yaml(render_restore(settings, platform, "latest")).encode(),
    }
    stage = Stage(
        name="backup",
        description="doit backup: the backup CronJob and a restore Job",
        render=lambda _ctx: {},
        kind="manifests",
    )
    return StageRender(stage, PurePosixPath("backup"), files)


def run_checks(
    stages: Sequence[StageRender],
    lock: Lockfile,
    provider: str,
    charts: ChartStore,
    *,
    cache_dir: Path | None = None,
    only: Sequence[str] = (),
    config: NebariConfig | None = None,
    lockfile_path: Path | None = None,
) -> CheckReport:
    checks = registered_checks()
    if only:
        unknown = sorted(set(only) - {c.name for c in checks})
        if unknown:
            from stagegraph.errors import StagegraphError

            known = ", ".join(c.name for c in checks)
            raise StagegraphError(f"doit check: unknown check {', '.join(unknown)}; known checks: {known}")
        checks = [c for c in checks if c.name in only]
    run = CheckRun(
        stages=stages,
        lock=lock,
        provider=provider,
        charts=charts,
        cache_dir=cache_dir,
        config=config,
        lockfile_path=lockfile_path,
    )
    findings: list[Finding] = []
    for check in checks:
        findings.extend(check.run(run))
    return CheckReport(tuple(findings), tuple(c.name for c in checks), tuple(s.name for s in stages))
