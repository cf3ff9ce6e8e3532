"""Read a task's options from doit's command line while tasks are being created.

doit hands task options (`doit deploy --stop-at 04-kubernetes-ingress`) only to actions,
but which stage tasks a deploy depends on has to be known when the tasks are created. So
`deploy` and `destroy` declare their options as doit params (for help and validation) and
the task creators read the same options here, with the same names and types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def task_options(argv: Sequence[str], task: str, params: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Values of `params` given after `task` on the command line (defaults otherwise)."""
    values: dict[str, Any] = {p["name"]: _default(p) for p in params}
    by_flag = {f"--{p['long']}": p for p in params if "long" in p}
    by_flag.update({f"-{p['short']}": p for p in params if "short" in p})
    try:
        start = list(argv).index(task) + 1
    except ValueError:
        return values
    i = start
    while i < len(argv):
        token = argv[i]
        flag, eq, inline = token.partition("=")
        param = by_flag.get(flag)
        if param is None:
            break  # the next task name, or something doit itself will reject
        kind = param.get("type", str)
        if kind is bool:
            values[param["name"]] = True
            i += 1
            continue
        if eq:
            value = inline
            i += 1
        elif i + 1 < len(argv):
            value = argv[i + 1]
            i += 2
        else:
            break
        if kind is list:
            values[param["name"]] = [*values[param["name"]], value]
        else:
            values[param["name"]] = value
    return values


def _default(param: Mapping[str, Any]) -> Any:
    default = param.get("default")
    return list(default) if isinstance(default, list) else default


def serial_run(argv: Sequence[str], default_processes: int) -> bool:
    """Whether doit runs one task at a time: `-n 1`, `-n1`, `--process 1`, `--process=1`.

    doit's own options come before the first task name (`config=...` variables may sit
    among them).
    """
    processes = default_processes
    tokens = list(argv[1:])
    i = 0
    while i < len(tokens):
        token = tokens[i]
        value: str | None = None
        if token in ("-n", "--process"):
            value = tokens[i + 1] if i + 1 < len(tokens) else None
            i += 1
        elif token.startswith("--process="):
            value = token.partition("=")[2]
        elif token.startswith("-n") and token[2:].isdigit():
            value = token[2:]
        elif not token.startswith("-") and "=" not in token:
            break  # the first task name
        if value is not None and value.isdigit():
            processes = int(value)
        i += 1
    return processes <= 1
