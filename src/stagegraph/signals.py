"""SIGINT and SIGTERM for a doit run: stop Terraform gracefully, say so in one line, exit.

Part of the command-line layer (it prints): `stagegraph.tasks` installs it when doit loads
dodo.py, in the main thread. Python's default would raise KeyboardInterrupt in the main
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


def _handle(signum: int, frame: FrameType | None) -> None:
    from stagegraph import tfprocess

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


def install() -> None:
    """Take over SIGINT and SIGTERM (only the main thread can)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _handle)
