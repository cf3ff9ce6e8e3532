"""The CI workflow of `ci_cd`: one per environment, triggered only by that environment's files.

GitHub Actions gets `.github/workflows/nebari-ops.yaml` for nebari-config.yaml and
`nebari-ops.<env>.yaml` for each `nebari-config.<env>.yaml` (the gitops RFD). GitLab CI
reads one `.gitlab-ci.yml`, so every GitLab environment of the folder is one job in it.
Each job deploys on pushes to its `branch` that touch its config, its secrets, its pin
overrides or its own workflow, runs `before_script` and `after_script` around the deploy,
and with `commit_render` commits its rendered `stages/` back (never state: .gitignore).
Rendered files are never trigger paths, so a committed render cannot start another run.

The render functions are pure; `write_workflows` is the one place that touches files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from stagegraph.deployment import label
from stagegraph.errors import StagegraphError
from stagegraph.schema.bootstrap import CICD

if TYPE_CHECKING:
    from stagegraph.project import Project

HEADER = "# Written by stagegraph from ci_cd in {config}; edit that, not this file.\n"
GITLAB_FILE = ".gitlab-ci.yml"
AGE_KEY_SECRET = "SOPS_AGE_KEY"  # noqa: S105 - the name of a CI secret, not a value


class CICDError(StagegraphError):
    """A ci_cd setting the chosen CI system cannot express."""


@dataclass(frozen=True)
class Job:
    """One environment's deploy job: what triggers it and what it runs."""

    environment: str
    config_name: str  # relative to the folder, e.g. nebari-config.dev.yaml
    ci: CICD
    triggers: tuple[str, ...]  # files (relative to the folder) whose change deploys
    render_dir: str  # the rendered stages, relative to the folder, e.g. dev/stages
    install: str  # how CI installs stagegraph

    @property
    def deploy(self) -> str:
        return f"doit env={self.environment} deploy" if self.environment else "doit deploy"

    @property
    def name(self) -> str:
        return f"nebari-ops.{self.environment}" if self.environment else "nebari-ops"


def github_path(environment: str) -> str:
    return f".github/workflows/nebari-ops{'.' + environment if environment else ''}.yaml"


class _Dumper(yaml.SafeDumper):
    """Multi-line scripts as literal blocks (`run: |`), as people write workflows by hand."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(header: str, document: dict[str, Any]) -> str:
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)


def render_github(job: Job) -> str:
    steps: list[dict[str, Any]] = [
        {"name": "Check out", "uses": "actions/checkout@v4"},
        {"name": "Set up Python", "uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
        {"name": "Install stagegraph", "run": job.install},
    ]
    steps += [_github_step(item) for item in job.ci.before_script]
    steps.append(
        {
            "name": f"Deploy {label(job.environment)}",
            "run": job.deploy,
            "env": {AGE_KEY_SECRET: "${{ secrets." + AGE_KEY_SECRET + " }}"},
        }
    )
    steps += [_github_step(item) for item in job.ci.after_script]
    if job.ci.commit_render:
        steps.append({"name": "Commit the render", "run": _commit_script(job, "HEAD")})
    document: dict[str, Any] = {
        "name": job.name,
        "on": {"push": {"branches": [job.ci.branch], "paths": [*job.triggers, github_path(job.environment)]}},
        # One deploy of an environment at a time; a second push waits instead of racing.
        "concurrency": {"group": job.name, "cancel-in-progress": False},
        "permissions": {"contents": "write" if job.ci.commit_render else "read"},
        "jobs": {"deploy": {"runs-on": "ubuntu-latest", "steps": steps}},
    }
    return _dump(HEADER.format(config=job.config_name), document)


def _github_step(item: str | dict[str, Any]) -> dict[str, Any]:
    return {"run": item} if isinstance(item, str) else dict(item)


def _commit_script(job: Job, push_to: str) -> str:
    return "\n".join(
        [
            'git config user.name "stagegraph"',
            'git config user.email "stagegraph@users.noreply.github.com"',
            f"git add -- {job.render_dir}",
            f'git diff --cached --quiet || git commit -m "Render {label(job.environment)} [skip ci]"',
            f"git push origin {push_to}",
        ]
    )


def render_gitlab(jobs: Sequence[Job]) -> str:
    document: dict[str, Any] = {"stages": ["deploy"]}
    for job in jobs:
        script = [job.deploy]
        if job.ci.commit_render:
            # GitLab's checkout is a detached head and its job token cannot push: a project
            # access token in CI_PUSH_TOKEN can.
            push = f'"https://oauth2:${{CI_PUSH_TOKEN}}@${{CI_SERVER_HOST}}/${{CI_PROJECT_PATH}}.git" HEAD:{job.ci.branch}'
            script += [*_commit_script(job, "").splitlines()[:-1], f"git push {push}"]
        entry: dict[str, Any] = {
            "stage": "deploy",
            "image": "python:3.11",
            "rules": [
                {
                    "if": f'$CI_COMMIT_BRANCH == "{job.ci.branch}"',
                    "changes": [*job.triggers, GITLAB_FILE],
                }
            ],
            # One deploy of an environment at a time, as GitHub's concurrency group.
            "resource_group": job.name,
            "before_script": [
                job.install,
                *(_gitlab_line(job, "before_script", i) for i in range(len(job.ci.before_script))),
            ],
            "script": script,
        }
        if job.ci.after_script:
            entry["after_script"] = [
                _gitlab_line(job, "after_script", i) for i in range(len(job.ci.after_script))
            ]
        document[job.name] = entry
    configs = ", ".join(job.config_name for job in jobs)
    return _dump(HEADER.format(config=configs), document)


def _gitlab_line(job: Job, field: str, index: int) -> str:
    item = getattr(job.ci, field)[index]
    if not isinstance(item, str):
        raise CICDError(
            f"{job.config_name}: ci_cd.{field}[{index}]: GitLab CI runs commands (strings), not step mappings "
            "(those are GitHub Actions steps); write the command as a string"
        )
    return item


def render_workflows(jobs: Sequence[Job]) -> dict[str, str]:
    """Path (relative to the folder) -> text, for every job whose ci_cd type asks for one."""
    files = {github_path(j.environment): render_github(j) for j in jobs if j.ci.type == "github-actions"}
    gitlab = [j for j in jobs if j.ci.type == "gitlab-ci"]
    if gitlab:
        files[GITLAB_FILE] = render_gitlab(gitlab)
    return files


def job_of(project: Project, ci: CICD, environment: str, config_path: Path) -> Job:
    """The deploy job of one config of `project`'s folder (itself or a sibling environment)."""
    from stagegraph.lockoverride import override_files
    from stagegraph.newdeployment import stagegraph_version

    folder = project.root
    triggers = [config_path.name]
    if (folder / "lockfiles" / "versions.yaml").is_file():
        triggers.append("lockfiles/versions.yaml")
    triggers += [str(p.relative_to(folder)) for p in override_files(folder, environment)]
    triggers += sorted(_sops_files(yaml.safe_load(config_path.read_text(encoding="utf-8"))))
    home = folder / environment if environment else folder
    render_dir = str((home / project.config.stagegraph.output_directory).relative_to(folder))
    version = stagegraph_version()
    own_source = (folder / "pyproject.toml").is_file() and (folder / "src" / "stagegraph").is_dir()
    install = "python -m pip install ." if own_source else f"python -m pip install stagegraph=={version}"
    return Job(environment, config_path.name, ci, tuple(dict.fromkeys(triggers)), render_dir, install)


def _sops_files(node: Any) -> set[str]:
    """Files named by `{sops: FILE, key: ...}` references anywhere in a config's YAML.

    Read from the YAML rather than the validated model so that every environment's job comes
    out the same whichever environment renders the shared .gitlab-ci.yml.
    """
    if isinstance(node, dict):
        found = {node["sops"]} if isinstance(node.get("sops"), str) and "key" in node else set()
        return found.union(*(_sops_files(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_sops_files(v) for v in node))
    return set()


def folder_jobs(project: Project) -> list[Job]:
    """This config's job, and the GitLab jobs of every environment of the folder (one file)."""
    from stagegraph.deployment import environments

    jobs = [job_of(project, project.config.ci_cd, project.environment, project.config_path)]
    for environment, path in environments(project.root):
        if path == project.config_path:
            continue
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        section = raw.get("ci_cd") if isinstance(raw, dict) else None
        if isinstance(section, dict) and section.get("type") == "gitlab-ci":
            try:
                ci = CICD.model_validate(section)
            except ValueError as exc:
                raise CICDError(f"{path.name}: ci_cd: {exc}; run `doit env={environment} validate`") from None
            jobs.append(job_of(project, ci, environment, path))
    return sorted(jobs, key=lambda j: j.environment)


def files_for(project: Project) -> dict[str, str]:
    jobs = folder_jobs(project)
    files = render_workflows(jobs)
    # Other environments' GitHub workflows are theirs to write.
    mine = github_path(project.environment)
    return {name: text for name, text in files.items() if name in (mine, GITLAB_FILE)}


def write_workflows(folder: Path, files: dict[str, str], environment: str) -> list[str]:
    """Write `files` under `folder`; remove this environment's own stale workflow. Returns what changed."""
    from stagegraph.atomic import remove_if_exists, write_atomic

    changed = [name for name, text in files.items() if write_atomic(folder / name, text)]
    for stale in (github_path(environment), GITLAB_FILE):
        path = folder / stale
        if (
            stale not in files
            and path.is_file()
            and path.read_text(encoding="utf-8").startswith("# Written by stagegraph")
        ):
            remove_if_exists(path)
            changed.append(f"{stale} (removed)")
    return changed
