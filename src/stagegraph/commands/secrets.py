"""The `doit secrets_*` commands (docs/secrets.md): one command per entry of the SOPS table."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stagegraph import actions
from stagegraph.commands import TaskDict
from stagegraph.tasks import failing_cleanly

if TYPE_CHECKING:
    from stagegraph.sops.tasks import SecretsCommand
    from stagegraph.tasks import Session


def commands() -> list[Callable[[Session], TaskDict]]:
    """One command function per `stagegraph.sops.tasks.COMMANDS` entry; each prints what it returns."""
    from stagegraph.sops.tasks import COMMANDS

    return [_command(c) for c in COMMANDS]


def _command(command: SecretsCommand) -> Callable[[Session], TaskDict]:
    def build(s: Session) -> TaskDict:
        return {
            "basename": command.name,
            "doc": command.doc,
            "params": command.params,
            "actions": [(failing_cleanly(actions.do_secrets_command), [s, command.run])],
            "verbosity": 2,
        }

    build.__doc__ = command.doc
    return build
