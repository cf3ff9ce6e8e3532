"""Task options read at task-creation time must match what doit itself parses."""

from __future__ import annotations

from stagegraph.cliargs import task_options
from stagegraph.tasks import DEPLOY_PARAMS, DESTROY_PARAMS


def test_defaults_when_task_absent() -> None:
    assert task_options(["doit", "list"], "deploy", DEPLOY_PARAMS) == {
        "stop_at": "",
        "disable_render": False,
        "allow_change": [],
    }


def test_stop_at_and_flag_after_task() -> None:
    argv = ["doit", "-n", "2", "deploy", "--stop-at", "04-kubernetes-ingress", "--disable-render"]
    assert task_options(argv, "deploy", DEPLOY_PARAMS) == {
        "stop_at": "04-kubernetes-ingress",
        "disable_render": True,
        "allow_change": [],
    }


def test_allow_change_is_repeatable() -> None:
    argv = ["doit", "deploy", "--allow-change", "provider", "--allow-change=project_name"]
    assert task_options(argv, "deploy", DEPLOY_PARAMS)["allow_change"] == ["provider", "project_name"]


def test_equals_form_and_next_task_stops_parsing() -> None:
    argv = ["doit", "deploy", "--stop-at=03-kubernetes-initialize", "status", "--stop-at", "x"]
    assert task_options(argv, "deploy", DEPLOY_PARAMS)["stop_at"] == "03-kubernetes-initialize"


def test_repeatable_list_option() -> None:
    argv = ["doit", "destroy", "--keep", "02-infrastructure", "--keep", "01-terraform-state"]
    assert task_options(argv, "destroy", DESTROY_PARAMS)["keep"] == [
        "02-infrastructure",
        "01-terraform-state",
    ]


def test_serial_run_reads_doits_process_option_before_the_task() -> None:
    from stagegraph.cliargs import serial_run

    assert serial_run(["doit", "-n", "1", "deploy"], 2)
    assert serial_run(["doit", "-n1", "deploy"], 2)
    assert serial_run(["doit", "config=x.yaml", "--process=1", "deploy"], 2)
    assert not serial_run(["doit", "deploy"], 2)
    assert not serial_run(["doit", "-n", "4", "deploy"], 2)
    assert serial_run(["doit", "deploy"], 1)
    # After the task name it is the task's business, not doit's.
    assert not serial_run(["doit", "deploy", "-n", "1"], 2)
