"""Chaos: deploys killed with SIGTERM, SIGKILL and SIGINT at random points mid-apply,
including during a long-running resource (issue 12 item 6).

After each kill: no process of the deploy is left (Terraform, or what it started), an
immediate rerun succeeds (no "state lock" or project lock in the way), nothing that had
succeeded applies again, and a second rerun is a no-op. The kill points come from a seeded
random generator (STAGEGRAPH_CHAOS_SEED to replay one); runtime is bounded by deploying
only up to a test-only plugin stage, `035-slow`, whose resource runs a `sleep`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sandboxproject import SandboxProject

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="signals")]

SEED = int(os.environ.get("STAGEGRAPH_CHAOS_SEED", "20261206"))
STOP_AT = "035-slow"
STAGES = {"01-terraform-state", "02-infrastructure", "03-kubernetes-initialize", STOP_AT}

#: A plugin stage whose one resource takes seconds to create (a local-exec provisioner).
SLOW_PLUGIN = """
from stagegraph.plugins.hookspecs import hookimpl
from stagegraph.stage import Stage


def render(ctx):
    # Long the first time only (reruns stay quick); a Terraform left running after its
    # deploy died would still be at it long after the checks below give up waiting.
    # `exec`: the sleep is the provisioner's own process, which Terraform stops on interrupt.
    command = "if [ -e slow-started ]; then exit 0; fi; touch slow-started && exec sleep 30"
    return {"main.tf.json": {"resource": {"terraform_data": {"slow": {
        "input": "slow", "provisioner": [{"local-exec": {"command": command}}],
    }}}}}


@hookimpl
def stagegraph_stages():
    return [Stage(name="035-slow", description="a test stage whose apply takes seconds",
                  render=render, depends_on=("03-kubernetes-initialize",), priority=35)]
"""


def _project(where: Path) -> SandboxProject:
    p = SandboxProject.create(where)
    (p.root / "slow.py").write_text(SLOW_PLUGIN)
    p.edit_config(lambda c: c.setdefault("stagegraph", {}).update(plugins={"import": ["slow.py"]}))
    return p


def _processes_in(root: Path) -> list[str]:
    """Processes working inside the deployment folder (Terraform runs in a stage folder)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().split(") ")[1][0] == "Z"
        except OSError:
            continue
        if not zombie and (cwd == str(root) or cwd.startswith(str(root) + "/")):
            found.append(f"{pid} {cmd[:80]}")
    return found


def _kill_at(p: SandboxProject, sig: signal.Signals, when: float | None) -> subprocess.CompletedProcess[str]:
    """Start a deploy and send it `sig` after `when` seconds, or (None) while the slow
    resource is being created."""
    proc = p.popen("deploy", "--stop-at", STOP_AT)
    marker = p.root / "stages" / STOP_AT / "slow-started"
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() - started < 120:
        if (when is None and marker.exists()) or (when is not None and time.monotonic() - started >= when):
            break
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, sig)  # the deploy alone, as `kill PID` or the OOM killer would
    out, _ = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def _applied(p: SandboxProject) -> set[str]:
    return {k for k, r in p.records().items() if r["status"] == "applied"} if p.state_dir.exists() else set()


#: One trial per signal (a full deploy takes seconds: three bound the runtime): SIGKILL and
#: SIGINT (Ctrl-C) during the slow resource, SIGTERM at a seeded random point.
TRIALS = [
    (signal.SIGKILL, "slow"),
    (signal.SIGTERM, "random"),
    (signal.SIGINT, "slow"),
]


@pytest.mark.parametrize(("sig", "point"), TRIALS, ids=[f"{s.name}-{w}" for s, w in TRIALS])
def test_a_killed_deploy_leaves_nothing_running_and_resumes(
    tmp_path: Path, sig: signal.Signals, point: str
) -> None:
    rng = random.Random(f"{SEED}-{sig.name}-{point}")
    when = None if point == "slow" else rng.uniform(0.5, 8.0)
    p = _project(tmp_path / "deploy")
    killed = _kill_at(p, sig, when)
    context = f"seed {SEED}, {sig.name} at {'the slow resource' if when is None else f'{when:.2f}s'}"

    # Our handler ran (a signal before dodo.py loaded meets Python's default): one line.
    if sig != signal.SIGKILL and killed.returncode == 128 + sig:
        lines = killed.stdout.splitlines()
        said = [i for i, line in enumerate(lines) if line.startswith("interrupted (")]
        assert len(said) == 1 and "Traceback" not in killed.stdout, f"{context}\n{killed.stdout}"
        # ...and nothing after it: no tail of Terraform's "interrupted" errors, no doit noise.
        assert lines[said[0] + 1 :] == [], f"{context}\n{killed.stdout}"
    if point == "slow" and sig == signal.SIGINT:
        assert killed.returncode == 130, f"{context}\n{killed.stdout}"
    # Terraform and what it started stop on their own, promptly, even after a SIGKILL.
    deadline = time.monotonic() + 10
    while _processes_in(p.root) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_in(p.root) == [], context

    before = _applied(p)
    rerun = p.doit("deploy", "--stop-at", STOP_AT)  # at once: no lock in the way
    assert "lock" not in rerun.stdout.lower(), f"{context}\n{rerun.stdout}"
    again = p.applied_in_last_run()
    assert again.isdisjoint(before), f"{context}: re-applied {again & before}"
    assert _applied(p) == STAGES, context
    p.doit("deploy", "--stop-at", STOP_AT)
    assert p.applied_in_last_run() == set(), context
