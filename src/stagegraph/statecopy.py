"""Reading and writing one stage's Terraform state where it is: local files or a backend.

A backend is reached with Terraform itself, in a scratch folder holding only the stage's
backend block (`terraform init` then `state pull` / `state push`): no providers are
installed, the stage folder is never touched, and a plain push refuses a state of another
lineage. Local state is a file, read and written byte for byte. Used by `doit move_state`
(`stagegraph.statemove`).
"""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stagegraph.errors import DeployError
from stagegraph.tfstate import STATE_FILE, StateIdentity

if TYPE_CHECKING:
    from stagegraph.project import Project
    from stagegraph.stage import Stage
    from stagegraph.statelocation import StateLocation
    from stagegraph.terraform import Terraform, TerraformBinary


class MoveRefusedError(DeployError):
    """The move cannot start: something is half-applied, or the target is not free."""


@dataclass(frozen=True)
class TfState:
    """A Terraform state as read: its bytes and what identifies it."""

    data: bytes
    lineage: str
    serial: int
    content: str  # resources and outputs, canonical: what must arrive unchanged

    @classmethod
    def parse(cls, data: bytes) -> TfState | None:
        """None for no state (an empty key reads as lineage "")."""
        if not data.strip():
            return None
        doc = json.loads(data)
        if not isinstance(doc, dict) or not doc.get("lineage"):
            return None
        content = json.dumps({"r": doc.get("resources", []), "o": doc.get("outputs", {})}, sort_keys=True)
        return cls(data, str(doc["lineage"]), int(doc.get("serial", 0)), content)

    def identity(self) -> StateIdentity:
        return StateIdentity(lineage=self.lineage, serial=self.serial)

    def short(self) -> str:
        return f"lineage {self.lineage[:8]}, serial {self.serial}"


class Side:
    """One place state can be: local files next to each stage, or a Terraform backend."""

    def __init__(
        self, view: Project, where: StateLocation, binary: TerraformBinary, stack: ExitStack
    ) -> None:
        self.view = view
        self.where = where
        self._binary = binary
        self._stack = stack
        self._tf: dict[str, Terraform] = {}

    def backend(self, stage: Stage) -> dict[str, Any] | None:
        from stagegraph.render import stage_backend

        return None if self.where.is_local else stage_backend(stage, self.view.config)

    def _terraform(self, stage: Stage) -> Terraform:
        """Terraform in a scratch folder holding only the stage's backend block (no providers)."""
        from stagegraph.terraform import Terraform

        if stage.name not in self._tf:
            doc = self.backend(stage)
            assert doc is not None
            scratch = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="stagegraph-move-")))
            (scratch / "main.tf.json").write_text(
                json.dumps({"terraform": doc["terraform"]}), encoding="utf-8"
            )
            logs = self.view.state_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            tf = Terraform(self._binary, scratch, logs / f"{stage.name}.move_state.log")
            tf.init()
            self._tf[stage.name] = tf
        return self._tf[stage.name]

    def read(self, stage: Stage) -> TfState | None:
        if self.where.is_local:
            path = self.view.stage_dir(stage) / STATE_FILE
            try:
                return TfState.parse(path.read_bytes())
            except FileNotFoundError:
                return None
            except (OSError, ValueError) as exc:
                raise MoveRefusedError(
                    f"{path}: unreadable Terraform state ({type(exc).__name__}); restore it, or "
                    f"`doit forget_state {stage.name}`"
                ) from None
        try:
            return TfState.parse(self._terraform(stage).state_pull())
        except ValueError:
            raise MoveRefusedError(
                f"{self.where.describe()}: the state of {stage.name} is not a Terraform state; restore it "
                "from the bucket's versions"
            ) from None

    def write(self, stage: Stage, state: TfState) -> TfState:
        """Put `state` here; what reads back (checked by the caller)."""
        from stagegraph.atomic import write_atomic

        if self.where.is_local:
            path = self.view.stage_dir(stage) / STATE_FILE
            write_atomic(path, state.data, 0o600)
            found = self.read(stage)
            assert found is not None
            return found
        tf = self._terraform(stage)
        with tempfile.TemporaryDirectory(prefix="stagegraph-push-") as tmp:
            file = Path(tmp) / "push.tfstate"
            file.write_bytes(state.data)
            file.chmod(0o600)
            current = self.read(stage)
            if current is None or (current.lineage == state.lineage and current.serial < state.serial):
                tf.state_push(file)  # a plain push: refuses any other lineage
                current = self.read(stage)
            if current is not None and current.lineage != state.lineage and current.content == state.content:
                # Our own copy, given a new lineage by the backend: put the source's back.
                tf.state_push(file, force=True)
                current = self.read(stage)
        if current is None:
            raise DeployError(f"{self.where.describe()}: the state of {stage.name} did not arrive; run again")
        return current
