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
