"""SIGINT and SIGTERM for a doit run: stop Terraform gracefully, say so in one line, exit.

Part of the command-line layer (it prints): `stagegraph.tasks` installs it when doit loads
dodo.py, in the main thread; before that, from dodo.py's first line, `install_early`
covers the imports. (A signal in the moment before dodo.py, while doit imports itself,
still meets Python's default: no code of ours has run yet.) Python's default would raise KeyboardInterrupt in the main
thread only (a traceback, while doit's worker threads carry on and may even start the next
stage's Terraform), and SIGTERM would end the process at once, leaving Terraform running
on its own. Instead the first signal makes every running Terraform stop gracefully, forbids
new ones (`stagegraph.tfprocess.begin_shutdown`) and exits with 128 + the signal number; the
exit waits for those Terraform processes (see `tfprocess._stop_all`). A second signal kills
them without more grace. Records of stages that finished are kept (they are written the
moment each stage succeeds); an interrupted stage runs again on the next deploy.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

#: Set by the first SIGINT/SIGTERM: the run's summary line is then left out (see tasks).
_interrupted = threading.Event()


def interrupted() -> bool:
    """Whether a signal stopped this run (its `interrupted (...)` line is the last word)."""
    return _interrupted.is_set()


def _handle(signum: int, frame: FrameType | None) -> None:
    from stagegraph import tfprocess

    _interrupted.set()

    if tfprocess.stopping():
        tfprocess.kill_all()
        sys.stderr.write("interrupted again: killing Terraform now\n")
        return
    running = tfprocess.begin_shutdown()
    name = signal.Signals(signum).name
    waiting = (
        f"; waiting for {running} running Terraform to stop gracefully (again to kill it)" if running else ""
    )
    sys.stderr.write(
        f"interrupted ({name}){waiting}; finished stages are recorded, the next deploy resumes\n"
    )
    sys.stderr.flush()
    raise SystemExit(128 + signum)


def _handle_early(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write(f"interrupted ({signal.Signals(signum).name}) while starting; nothing ran\n")
    sys.stderr.flush()
    raise SystemExit(128 + signum)


def install_early() -> None:
    """Before the imports of a starting command: a signal then ends it with one line.

    The first thing dodo.py and the `stagegraph` command do. Importing stagegraph's task
    modules takes a second or more, and a Ctrl-C in it would meet Python's default: a
    KeyboardInterrupt traceback from whatever module was loading. Nothing has run yet,
    so there is nothing to stop; `install` replaces this handler once there may be.
    Imports nothing, so it is safe at any point of an import.
    """
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _handle_early)


def install() -> None:
    """Take over SIGINT and SIGTERM (only the main thread can)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _handle)
