"""Every failure a user can cause or meet, as an exception that builds its own message.

Library code raises these and never prints or exits; the doit layer (`stagegraph.tasks`)
prints `str(error)` as one line, without a traceback, and fails the task. Messages name the
file and the field and say what to do next. No message ever carries a secret value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class StagegraphError(Exception):
    """Base class: `str(err)` is the whole one-line message shown to the user."""


class ConfigError(StagegraphError):
    """The config file is missing, malformed or fails validation.

    Each problem reads `<file>: <dotted.path>: <message> (got <value>)`.
    """

    def __init__(self, file: str, problems: Sequence[str]) -> None:
        self.file = file
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class LockfileError(StagegraphError):
    """The lockfile is missing, malformed, or lacks a pin a stage asks for."""


class GraphError(StagegraphError):
    """The stage graph is not a DAG, names an unknown stage, or has clashing providers."""


class UnknownStageError(GraphError):
    def __init__(self, name: str, known: Iterable[str], referrer: str | None = None) -> None:
        known_list = ", ".join(sorted(known))
        where = f"stage {referrer!r} depends on " if referrer else ""
        super().__init__(f"{where}unknown stage {name!r}; known stages: {known_list}")


class UndeclaredInputError(StagegraphError):
    """A stage's render read a config section or pin it did not declare.

    Declarations drive incremental rebuilds, so reading an undeclared input would make a
    stage silently stale; this is a bug in the stage, caught the first time it renders.
    """


class RenderError(StagegraphError):
    """A stage could not be rendered or written."""


class TerraformError(StagegraphError):
    """A terraform command failed; carries the log path and the tail of the error."""


class DeployError(StagegraphError):
    """A deploy, plan or destroy could not go on (failed stage, missing upstream, ...)."""


class LockHeldError(DeployError):
    """Another deploy or destroy holds the project lock."""


class SecretError(StagegraphError):
    """A secret could not be decrypted or found; never includes the secret's value."""


class CheckFailedError(StagegraphError):
    """`doit check` found problems in a render (each was printed on its own line)."""
