"""The CI workflows of `ci_cd`: one per environment, triggered only by that environment's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sandboxproject import SandboxProject

from stagegraph.cicd import CICDError, Job, render_github, render_gitlab
from stagegraph.schema.bootstrap import CICD


def _job(env: str = "dev", **ci: Any) -> Job:
    return Job(
        environment=env,
        config_name=f"nebari-config.{env}.yaml" if env else "nebari-config.yaml",
        ci=CICD.model_validate({"type": "github-actions", **ci}),
        triggers=(f"nebari-config.{env}.yaml" if env else "nebari-config.yaml", "secrets/dev.enc.yaml"),
        render_dir=f"{env}/stages" if env else "stages",
        install="python -m pip install stagegraph==1.0",
    )


def test_github_workflow_deploys_its_environment_on_its_files_and_branch() -> None:
    job = _job(
        branch="release", before_script=["make lint", {"uses": "org/setup@v1"}], after_script=["make notify"]
    )
    doc = yaml.safe_load(render_github(job))
    push = doc["on"]["push"]
    assert push["branches"] == ["release"]
    assert push["paths"] == [
        "nebari-config.dev.yaml",
        "secrets/dev.enc.yaml",
        ".github/workflows/nebari-ops.dev.yaml",
    ]
    assert not any("stages" in p for p in push["paths"])  # a committed render never re-triggers
    steps = doc["jobs"]["deploy"]["steps"]
    runs = [s.get("run") or s.get("uses") for s in steps]
    deploy = runs.index("doit env=dev deploy")
    assert runs.index("make lint") < runs.index("org/setup@v1") < deploy < runs.index("make notify")
    assert "git add -- dev/stages" in runs[-1] and "[skip ci]" in runs[-1]
    assert doc["permissions"] == {"contents": "write"}
    assert steps[deploy]["env"] == {"SOPS_AGE_KEY": "${{ secrets.SOPS_AGE_KEY }}"}


def test_github_without_commit_render_only_reads() -> None:
    doc = yaml.safe_load(render_github(_job("", commit_render=False)))
    runs = [s.get("run", "") for s in doc["jobs"]["deploy"]["steps"]]
    assert "doit deploy" in runs and not any("git commit" in r for r in runs)
    assert doc["permissions"] == {"contents": "read"} and doc["name"] == "nebari-ops"


def test_gitlab_has_one_job_per_environment_in_one_file() -> None:
    dev = _job(
        "dev", type="gitlab-ci", branch="develop", before_script=["echo hi"], after_script=["echo bye"]
    )
    prod = _job("prod", type="gitlab-ci", commit_render=False)
    doc = yaml.safe_load(render_gitlab([dev, prod]))
    assert set(doc) == {"stages", "nebari-ops.dev", "nebari-ops.prod"}
    d = doc["nebari-ops.dev"]
    assert d["rules"] == [
        {
            "if": '$CI_COMMIT_BRANCH == "develop"',
            "changes": ["nebari-config.dev.yaml", "secrets/dev.enc.yaml", ".gitlab-ci.yml"],
        }
    ]
    assert d["before_script"] == ["python -m pip install stagegraph==1.0", "echo hi"]
    assert d["script"][0] == "doit env=dev deploy" and "HEAD:develop" in d["script"][-1]
    assert d["after_script"] == ["echo bye"]
    assert doc["nebari-ops.prod"]["script"] == ["doit env=prod deploy"]


def test_gitlab_refuses_a_github_step_mapping_in_one_line() -> None:
    job = _job("dev", type="gitlab-ci", before_script=["ok", {"uses": "x/y@v1"}])
    with pytest.raises(
        CICDError, match=r"^nebari-config.dev.yaml: ci_cd.before_script\[1\]: GitLab CI runs commands"
    ):
        render_gitlab([job])


@pytest.mark.slow
def test_render_writes_each_environments_workflow_and_removes_a_stale_one(tmp_path: Path) -> None:
    p = SandboxProject.create(tmp_path / "p")
    p.edit_config(lambda c: c.update(ci_cd={"type": "github-actions", "branch": "main"}))
    data = p.config()
    data["ci_cd"] = {"type": "github-actions", "branch": "dev"}
    (p.root / "nebari-config.dev.yaml").write_text(yaml.safe_dump(data))
    p.doit("render")
    p.doit("env=dev", "render")
    workflows = p.root / ".github" / "workflows"
    assert sorted(f.name for f in workflows.iterdir()) == ["nebari-ops.dev.yaml", "nebari-ops.yaml"]
    dev = yaml.safe_load((workflows / "nebari-ops.dev.yaml").read_text())
    assert dev["on"]["push"]["paths"][0] == "nebari-config.dev.yaml"
    assert "nebari-config.yaml" not in dev["on"]["push"]["paths"]
    assert "git add -- dev/stages" in dev["jobs"]["deploy"]["steps"][-1]["run"]
    # Switching dev to GitLab: its GitHub workflow goes, the folder's .gitlab-ci.yml comes.
    data["ci_cd"] = {"type": "gitlab-ci", "branch": "dev"}
    (p.root / "nebari-config.dev.yaml").write_text(yaml.safe_dump(data))
    p.doit("env=dev", "render")
    assert sorted(f.name for f in workflows.iterdir()) == ["nebari-ops.yaml"]
    assert set(yaml.safe_load((p.root / ".gitlab-ci.yml").read_text())) == {"stages", "nebari-ops.dev"}
    # The default environment's render writes the same shared file (no flip-flop).
    before = (p.root / ".gitlab-ci.yml").read_bytes()
    p.doit("render")
    assert (p.root / ".gitlab-ci.yml").read_bytes() == before
