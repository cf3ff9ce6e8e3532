"""What an upgrade step works with: the config being changed, decisions, notes, actions.

A step never prompts. Where Nebari asks the user (`Confirm.ask`), a step calls
`decide(name, ...)`: the answer comes from `doit upgrade --decide NAME:VALUE`, else from the
step's default when there is a safe one (the note says which flag changes it), else the
upgrade stops with one line naming the flag to pass. Where Nebari acts on the live cluster
during the upgrade, a step records a `DeployAction` instead, which the stage graph runs
before or after the stage it belongs to (`stagegraph.upgrade.deploy_actions`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from stagegraph.errors import StagegraphError


class UpgradeError(StagegraphError):
    """An upgrade cannot go on (a decision is missing, a provider is gone, a file is bad)."""


ActionKind = Literal["kubernetes-delete", "manual", "tfstate-rename"]
ActionStatus = Literal["pending", "done", "not-applicable"]


class DeployAction(BaseModel):
    """Something an upgrade step needs done against the live cluster, at a point of the deploy.

    kind kubernetes-delete: delete the named objects (404 is fine) with the Kubernetes client.
    kind manual: commands a person runs (helm, a web console); the deploy stops before the
      stage until `doit upgrade --confirm ID` records that they were run.
    kind tfstate-rename: rename attributes in the stage's local Terraform state.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    step: str
    stage: str
    when: Literal["before", "after"]
    kind: ActionKind
    description: str
    #: kubernetes-delete: [{"api_version", "plural", "namespace", "name"} or "label_selector"];
    #: tfstate-rename: {"old": "new"} under key "renames"; manual: shell commands to show.
    objects: list[dict[str, str]] = []
    renames: dict[str, str] = {}
    commands: list[str] = []
    status: ActionStatus = "pending"
    note: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True)
class Decision:
    """A choice a step may need: its flag name, the allowed values, and what each does."""

    name: str
    choices: tuple[str, ...]
    help: str
    default: str | None = None


@dataclass
class StepContext:
    """The mutable state one upgrade run hands from step to step."""

    config: MutableMapping[str, Any]
    config_path: Path
    decisions: Mapping[str, str]
    start_version: str
    notes: list[str] = field(default_factory=list)
    actions: list[DeployAction] = field(default_factory=list)
    #: Files to write next to the config (path -> text), e.g. a Keycloak realm import.
    files: dict[Path, str] = field(default_factory=dict)
    used_decisions: set[str] = field(default_factory=set)
    version: str = ""
    #: Makes an encrypted Keycloak root password and returns the config's reference to it
    #: (None: the upgrade is a dry run, or no deployment folder to write it in).
    make_root_password: Callable[[], dict[str, str]] | None = None

    def note(self, text: str) -> None:
        self.notes.append(f"{self.version}: {text}")

    def decide(self, decision: Decision) -> str:
        self.used_decisions.add(decision.name)
        value = self.decisions.get(decision.name)
        if value is None:
            if decision.default is None:
                raise UpgradeError(
                    f"upgrade step {self.version}: {decision.help}; choose with "
                    f"`doit upgrade --decide {decision.name}:<{'|'.join(decision.choices)}>`"
                )
            self.note(
                f"{decision.help}: took the default {decision.default!r} "
                f"(`--decide {decision.name}:<{'|'.join(decision.choices)}>` to choose)"
            )
            return decision.default
        if value not in decision.choices:
            raise UpgradeError(f"--decide {decision.name}:{value}: not one of {', '.join(decision.choices)}")
        return value

    def action(self, **fields: Any) -> None:
        slug = fields.pop("slug")
        self.actions.append(DeployAction(id=f"{self.version}-{slug}", step=self.version, **fields))


def section(config: MutableMapping[str, Any], key: str) -> MutableMapping[str, Any]:
    """`config[key]` as a mapping, created empty when absent (or null)."""
    value = config.get(key)
    if not isinstance(value, MutableMapping):
        from ruamel.yaml.comments import CommentedMap

        value = CommentedMap()
        config[key] = value
    return value


def get_path(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def pop_key(config: MutableMapping[str, Any], key: str) -> bool:
    if key in config:
        del config[key]
        return True
    return False
