"""doit settings for stagegraph, and a reporter that prints failures as one line."""

from __future__ import annotations

from typing import Any

from doit.reporter import ConsoleReporter

from stagegraph.doitdb import DOIT_DB


class StagegraphReporter(ConsoleReporter):  # type: ignore[misc]
    """doit's console reporter, minus the noise around our own stage output.

    Stage actions print their own start/finish lines (prefixed, thread-safe), so the
    reporter only marks up-to-date stages and prints a failure as `error: <message>`.
    """

    def execute_task(self, task: Any) -> None:
        pass

    def skip_uptodate(self, task: Any) -> None:
        if task.name[0] != "_" and ":" not in task.name:
            self.write(f"-- {task.name}: up to date\n")

    def _write_failure(self, result: dict[str, Any], write_exception: bool = True) -> None:
        exc = result["exception"]
        if type(exc).__name__ == "TaskFailed":
            # Tasks running in parallel (a render and the lock of one deploy) can fail for
            # the same reason, such as a folder that belongs to another deployment: say it once.
            line = f"error: {exc.message.strip()}\n"
            said: set[str] = self.__dict__.setdefault("_said", set())
            if line not in said:
                said.add(line)
                self.write(line)
        else:  # a bug: keep doit's full report with the traceback
            super()._write_failure(result, write_exception)


DOIT_CONFIG: dict[str, Any] = {
    "default_tasks": ["deploy"],
    "sort": "definition",
    # Independent stages apply concurrently in threads (doit's process mode cannot pickle
    # our tasks); `-n 1` forces a serial run.
    "par_type": "thread",
    "num_process": 2,
    "reporter": StagegraphReporter,
    "verbosity": 2,
    "backend": "json",
    # dodo_namespace (stagegraph.tasks) puts it in the deployment's own .stagegraph/.
    "dep_file": DOIT_DB,
}
