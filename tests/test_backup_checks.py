"""`doit check` looks at what `doit backup` applies: the CronJob and a restore Job.

tests/test_checks_fixtures.py runs every check on every fixture's render, the backup's
objects included; these tests show the checks really see them (a broken object is found)
and that every Secret they read is one a stage creates, as references only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import yaml
from checkhelpers import ROOT, check, problem_lines, render_file

from stagegraph.checks import StageRender

LOCAL = ROOT / "tests" / "fixtures" / "configs" / "explicit-local.happy.yaml"


def backup_of(stages: list[StageRender]) -> StageRender:
    (found,) = [s for s in stages if s.name == "backup"]
    return found


def with_backup_edited(stages: list[StageRender], file: str, edit: Any) -> list[StageRender]:
    out = []
    for s in stages:
        if s.name == "backup":
            docs = [d for d in yaml.safe_load_all(s.files[file].decode()) if d]
            edit(docs)
            text = "".join("---\n" + yaml.safe_dump(d) for d in docs)
            s = replace(s, files={**s.files, file: text.encode()})
        out.append(s)
    return out


def cron_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    cron = next(d for d in docs if d["kind"] == "CronJob")
    pod: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def test_the_backup_and_restore_objects_are_in_the_checked_render() -> None:
    backup = backup_of(render_file(LOCAL))
    kinds = {
        name: [d["kind"] for d in yaml.safe_load_all(text) if d] for name, text in backup.yaml_files().items()
    }
    assert kinds == {
        "backup.yaml": ["ServiceAccount", "PersistentVolumeClaim", "ConfigMap", "CronJob"],
        "restore-latest.yaml": ["ConfigMap", "Job"],
    }


def test_an_unknown_field_in_the_cronjob_is_a_problem() -> None:
    stages = with_backup_edited(
        render_file(LOCAL),
        "backup.yaml",
        lambda docs: cron_pod(docs)["initContainers"][1].update(pgDump=True),
    )
    lines = problem_lines(check(stages, only=["kubernetes-objects"]))
    assert any(line.startswith("backup: kubernetes-objects:") and "pgDump" in line for line in lines), lines


def test_every_secret_the_backup_reads_is_created_by_a_stage_and_a_wrong_name_is_found() -> None:
    stages = render_file(LOCAL)
    assert problem_lines(check(stages, only=["secret-references"])) == []
    read = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for c in cron_pod([d for d in yaml.safe_load_all(backup_of(stages).files["backup.yaml"]) if d])[
            "initContainers"
        ]
        for e in c["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert read == {
        "keycloak-admin-credentials",
        "keycloak-postgresql",
        "conda-store-postgresql",
        "conda-store-minio-credentials",
    }

    def rename(docs: list[dict[str, Any]]) -> None:
        env = cron_pod(docs)["initContainers"][1]["env"]
        ref = next(e for e in env if e["name"] == "PGPASSWORD")["valueFrom"]["secretKeyRef"]
        ref["name"] = "keycloak-postgres"

    lines = problem_lines(
        check(with_backup_edited(stages, "backup.yaml", rename), only=["secret-references"])
    )
    assert len(lines) == 1 and "reads Secret 'keycloak-postgres', which no stage creates" in lines[0]
