"""End to end: a canary root password, SOPS-encrypted, deployed to the sandbox by `doit`.

The sandbox project refers to the Keycloak root password by `{sops, key}`; the real sops
decrypts it with a real age key during `doit deploy`, which applies every stage through
real Terraform. Then the whole project tree (rendered stages, doit's database, records,
logs), the run's temp directory and everything doit printed are searched for the canary:
it may appear only in Terraform state files, readable by the owner only.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from sandboxproject import SandboxProject
from test_sops_support import FIELD, FILE, make_keys, write_rules

from stagegraph.sops.store import STORE
from stagegraph.sops.tasks import secrets_encrypt

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEY = "keycloak.root_password"
CANARY = "canary-e2e-7d41c09a-root-password"
CANARY_2 = "canary-e2e-2b88f310-rotated-password"


def leaks(where: list[Path], needle: str) -> list[str]:
    """Files under `where` holding `needle`, other than owner-only Terraform state."""
    found = []
    for base in where:
        for path in base.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            if needle.encode() not in path.read_bytes():
                continue
            is_state = path.name.startswith("terraform.tfstate")
            private = stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
            if not (is_state and private):
                found.append(f"{path} (mode {oct(stat.S_IMODE(path.stat().st_mode))})")
    return found


def stages_reading(field: str) -> set[str]:
    from stagegraph.graph import build_graph
    from stagegraph.plugins.manager import stages_for

    graph = build_graph(stages_for({}))
    return {s.name for s in graph.stages if any(i.config_path == field for i in s.sensitive)}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SandboxProject:
    project = SandboxProject.create(tmp_path / "p")
    keys = make_keys(monkeypatch, project.root / ".age")  # the age key lives in the project dir
    write_rules(project.root, keys.mine_public)
    from test_sops_support import project_at

    secrets_encrypt(project_at(project.root), name="keycloak", key=KEY, value=CANARY)
    project.edit_config(
        lambda c: (
            c.setdefault("security", {})
            .setdefault("keycloak", {})
            .update(initial_root_password={"sops": FILE, "key": KEY})
        )
    )
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    project.extra_env.update(
        SOPS_AGE_KEY_FILE=str(keys.mine),
        XDG_CONFIG_HOME=str(project.root / ".age" / "xdg"),
        TMPDIR=str(tmpdir),
    )
    STORE.clear()
    return project


def test_canary_reaches_only_terraform_state_and_one_change_reapplies_only_its_readers(
    project: SandboxProject, tmp_path: Path
) -> None:
    first = project.doit("deploy")
    records = project.records()
    assert all(r["status"] == "applied" for r in records.values()) and len(records) >= 10
    readers = stages_reading(FIELD)
    assert "05-kubernetes-keycloak" in readers
    for name in readers:
        assert records[name]["inputs"][f"secret:{_variable(name)}"].startswith("sops:")

    searched = [project.root, tmp_path / "tmpdir"]
    assert leaks(searched, CANARY) == []
    states = [p for p in project.root.rglob("terraform.tfstate") if CANARY in p.read_text()]
    assert states, "the decrypted value never reached Terraform"
    assert CANARY not in first.stdout + first.stderr

    # One secret changes (a new value encrypted into the same key): only its readers re-apply.
    secrets_encrypt(_project_at(project), name="keycloak", key=KEY, value=CANARY_2)
    why = project.doit("why", "05-kubernetes-keycloak").stdout
    assert f"secret:{_variable('05-kubernetes-keycloak')}: changed" in why
    second = project.doit("deploy")
    assert project.applied_in_last_run() == readers
    for needle in (CANARY, CANARY_2):
        assert leaks(searched, needle) == []
        assert needle not in second.stdout + second.stderr + why

    # Nothing changed: nothing re-applies (the secret counts by its ciphertext).
    project.doit("deploy")
    assert project.applied_in_last_run() == set()


def test_a_tampered_secret_stops_the_deploy_with_one_line_and_applies_nothing(
    project: SandboxProject,
) -> None:
    project.doit("deploy")
    path = project.root / FILE
    data = yaml.safe_load(path.read_text())
    value = data["keycloak"]["root_password"]
    head, _, rest = value.partition(",iv:")
    data["keycloak"]["root_password"] = f"{head},iv:{'A' if rest[0] != 'A' else 'B'}{rest[1:]}"
    path.write_text(yaml.safe_dump(data, sort_keys=False))

    proc = project.doit("deploy", check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {FILE}: a value does not decrypt: its ciphertext was changed")
    assert "git checkout -- secrets/keycloak.enc.yaml" in errors[0]
    assert project.applied_in_last_run() == set()
    assert CANARY not in proc.stdout + proc.stderr


def test_a_wrong_key_stops_the_deploy_with_one_line(project: SandboxProject, tmp_path: Path) -> None:
    from stagegraph.sops.keys import generate_key

    project.doit("deploy", "--stop-at", "04-kubernetes-ingress")
    other = tmp_path / "other-key.txt"
    generate_key(other)
    project.extra_env["SOPS_AGE_KEY_FILE"] = str(other)
    proc = project.doit("deploy", check=False)
    assert proc.returncode != 0
    assert f"{FILE}: cannot decrypt: your age key is not one of the file's recipients" in proc.stdout
    assert "05-kubernetes-keycloak" not in project.applied_in_last_run()
    assert project.records().get("05-kubernetes-keycloak", {}).get("applied_at") is None


def _variable(stage: str) -> str:
    from stagegraph.graph import build_graph
    from stagegraph.plugins.manager import stages_for

    graph = build_graph(stages_for({}))
    return next(i.variable for i in graph[stage].sensitive if i.config_path == FIELD)


def _project_at(project: SandboxProject):  # type: ignore[no-untyped-def]
    from test_sops_support import project_at

    return project_at(project.root)
