"""Ending quietly when the reader of our output goes away (`doit list | head -1`).

Python turns a write to a closed pipe into a BrokenPipeError, which doit reports with a
traceback. Commands that only read (list, status, why, ...) get the behaviour of every
Unix tool instead: SIGPIPE's default action ends the process, silently, at once. Commands
that change things (deploy, destroy, apply_plan, render, ...) must not die half way for
want of a reader: their console stops writing and the run goes on (`stdout_gone`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence

#: doit's own read-only commands, and ours.
READ_ONLY = frozenset(
    {"list", "help", "info", "dumpdb", "tabcompletion", "status", "why", "graph", "plugins", "validate"}
)


def command_of(argv: Sequence[str]) -> str:
    """The first word of the command line that is not an option or a `name=value` variable."""
    skip_next = False
    for token in argv[1:]:
        if skip_next:
            skip_next = False
            continue
        if token in ("-n", "--process", "-P", "--parallel-type", "-f", "--file", "-d", "--dir"):
            skip_next = True
            continue
        if token.startswith("-") or "=" in token:
            continue
        return token
    return "run"


def die_quietly_on_broken_pipe(argv: Sequence[str]) -> None:
    """For read-only commands: a closed pipe ends the process like it ends `cat`."""
    if command_of(argv) in READ_ONLY and hasattr(signal, "SIGPIPE"):
        with contextlib.suppress(ValueError):  # not the main thread: leave it alone
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def stdout_gone() -> None:
    """The reader closed our stdout: send the rest of the output to /dev/null.

    Keeps later writes (and the interpreter's flush at exit) from raising again.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
