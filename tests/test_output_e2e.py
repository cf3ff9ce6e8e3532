"""What the commands print, read the way a user reads it: each says things once, ends with
one summary line, and ends quietly when its reader goes away.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sandboxproject import SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ERROR = "error: nebari-config.yaml: namespace: Input should be a valid string (got 3)"


@pytest.fixture
def project(tmp_path: Path) -> SandboxProject:
    return SandboxProject.create(tmp_path / "p")


@pytest.mark.parametrize(
    "command",
    [
        ["deploy"],
        ["status"],
        ["why", "04-kubernetes-ingress"],
        ["plan"],
        ["apply_plan"],
        ["destroy"],
        ["render"],
        ["validate"],
        ["graph"],
    ],
)
def test_an_invalid_config_is_the_one_thing_every_command_says(
    project: SandboxProject, command: list[str]
) -> None:
    project.edit_config(lambda c: c.update(namespace=3))
    proc = project.doit(*command, check=False)
    assert proc.returncode != 0
    assert proc.stdout.splitlines() == [ERROR], proc.stdout
    assert proc.stderr == ""


def test_a_closed_pipe_ends_list_quietly(project: SandboxProject) -> None:
    proc = subprocess.Popen(
        [project.python, "-m", "doit", "list", "--all", "--status"],
        cwd=project.root,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head -0`: the reader is gone before the first line
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert err == ""
    assert proc.returncode in (0, -13)  # done, or ended by SIGPIPE like any Unix tool


def test_each_run_ends_with_one_summary_line_and_warnings_have_one_prefix(project: SandboxProject) -> None:
    project.edit_config(
        lambda c: c["security"].setdefault("keycloak", {}).update(initial_root_password="pw-plain")
    )
    out = project.doit("deploy", "--stop-at", "02-infrastructure").stdout.splitlines()
    assert out[-1].startswith("deploy: 2 applied in ")
    warnings = [line for line in out if "plaintext secret" in line]
    assert warnings and all(line.startswith("warning: nebari-config.yaml: ") for line in warnings)
    assert not any("warning: warning:" in line for line in out)
    out = project.doit("-n", "1", "plan:02-infrastructure").stdout.splitlines()
    assert out[-1].startswith("plan: ") and "skipped" in out[-1]
    out = project.doit("-n", "1", "destroy").stdout.splitlines()
    assert out[-1].startswith("destroy: 2 destroyed in ")
    assert sum(line.startswith(("deploy:", "plan:", "destroy:")) for line in out) == 1
