"""What a stage is: data plus a pure render.

A `Stage` declares everything the engine needs to decide when it is stale: the stages whose
outputs it reads, the config sections it reads, the pins it uses and the secrets it needs.
Its `render` is a pure function of a `RenderContext`; the context only lets the render read
what the stage declared (see `stagegraph.views`), so a declaration cannot silently drift
from what the code reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from stagegraph.errors import DeployError

if TYPE_CHECKING:
    from stagegraph.driver import StageDriver
    from stagegraph.schema.config import NebariConfig
    from stagegraph.views import PinView

#: What a render returns: file path (relative to the stage directory) -> content.
#: A dict is Terraform JSON (written canonically); a str is written as is (YAML manifests).
Rendered = Mapping[str, "dict[str, Any] | str"]

StageKind = Literal["terraform", "manifests", "custom"]

M = TypeVar("M", bound=BaseModel)


class StageIO(BaseModel):
    """Base of every stage's typed inputs and outputs: strict, immutable, no extra keys."""

    # defer_build: stage modules are imported for every doit command, `doit list` included;
    # a validator is compiled only when a deploy first reads or writes these outputs.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class NoInputs(StageIO):
    """A stage that takes nothing from upstream stages."""


class NoOutputs(StageIO):
    """A stage that hands nothing to later stages."""


@dataclass(frozen=True)
class SensitiveInput:
    """A Terraform variable whose value is a secret taken from the config.

    `config_path` is the dotted path of a secret field in the config (a plaintext value or a
    reference to a SOPS-encrypted secret). The engine resolves it at apply time and hands it
    to Terraform through the environment; it never reaches a rendered file or a record.
    """

    variable: str
    config_path: str
    description: str


@dataclass(frozen=True)
class RenderContext:
    """Everything a render may read. `config` and `pins` refuse undeclared reads."""

    config: NebariConfig
    pins: PinView
    provider: str
    #: `stagegraph.rehearse`: render the provider's stages with terraform_data twins.
    rehearse: bool = False

    @property
    def sandbox(self) -> bool:
        """Twins instead of real resources: the sandbox provider, or a rehearsal."""
        return self.provider == "sandbox" or self.rehearse


@dataclass(frozen=True)
class MachineContext:
    """What a stage may read from the machine running the deploy, at deploy time only.

    For inputs that are not in the config but belong to whoever deploys: the `existing`
    provider's kubeconfig (`KUBECONFIG`, `~/.kube/config`). Renders never see this; the
    values become variables of the stage, so they are fingerprinted like upstream outputs.
    """

    config: NebariConfig
    config_dir: Path
    config_name: str
    environ: Mapping[str, str]
    home: Path
    cwd: Path


class Upstream:
    """The typed outputs of the stages a stage depends on, looked up by model class.

    Lookups by type (not by a string such as "stages/04-kubernetes-ingress") mean a plugin
    that replaces a stage keeps working for its consumers as long as it produces the same
    output model, and a typo is a type error rather than a KeyError at deploy time.
    """

    def __init__(self, consumer: str, outputs: Mapping[str, BaseModel]) -> None:
        self._consumer = consumer
        self._outputs = dict(outputs)

    def get(self, model: type[M]) -> M:
        found = [o for o in self._outputs.values() if isinstance(o, model)]
        if len(found) != 1:
            have = ", ".join(f"{k} ({type(v).__name__})" for k, v in sorted(self._outputs.items()))
            raise DeployError(
                f"stage {self._consumer!r} needs the outputs {model.__name__} from exactly one "
                f"upstream stage, found {len(found)} among: {have or 'none'}; "
                "declare the producing stage in depends_on"
            )
        return found[0]


@dataclass(frozen=True)
class CheckContext:
    """What a stage's check sees after the stage applied (never in the sandbox).

    A preflight gets the same context before the stage applies, with empty outputs and
    `pins` set to read any pin of the lockfile: it runs at deploy time and decides nothing
    about staleness, so it need not declare what it reads (kubernetes.max_version).
    """

    stage: str
    provider: str
    upstream: Upstream
    outputs: BaseModel
    line: Callable[[str], None]
    pins: PinView | None = None


def _no_connect(_: Upstream) -> BaseModel:
    return NoInputs()


@dataclass(frozen=True)
class Stage:
    """One node of the deploy graph.

    name:            directory name, e.g. "04-kubernetes-ingress"; unique in a graph.
    description:     one line, shown by `doit list`.
    render:          pure `RenderContext -> Rendered`.
    depends_on:      stages whose outputs this stage reads (edges of the DAG).
    config_sections: dotted config paths the render reads ("security.keycloak").
    pins:            lockfile keys the render uses ("helm_charts.traefik").
    inputs/connect:  the Terraform variables taken from upstream outputs, and how to build
                     them; each becomes one typed `variable` block and one entry of the
                     variables file written for hand deploys.
    outputs:         model that `terraform output -json` must satisfy.
    mock_outputs:    stand-in outputs used by `plan` when this stage is not applied yet.
    sensitive:       secret variables resolved at apply time (never rendered or recorded).
    provider_subdir: whether the stage directory has a per-provider subfolder, as Nebari's
                     01 and 02 do ("02-infrastructure/local").
    priority:        tie-break between stages that are ready at the same time, and the
                     rule for replacing a stage of the same name (the higher wins).
    driver:          how the stage is applied (None: Terraform in the stage directory).
    check:           runs after a successful apply against a real cluster; raising a
                     StagegraphError fails the stage (it is then retried next deploy).
    preflight:       runs before the stage applies against a real cluster (the Kubernetes
                     version check); raising a StagegraphError stops the stage untouched.
    machine_inputs:  variables read from the machine at deploy time (MachineContext), added
                     to those from `connect`; the render declares them. None: no such inputs.
    """

    name: str
    description: str
    render: Callable[[RenderContext], Rendered]
    depends_on: tuple[str, ...] = ()
    config_sections: tuple[str, ...] = ()
    pins: tuple[str, ...] = ()
    inputs: type[BaseModel] = NoInputs
    connect: Callable[[Upstream], BaseModel] = _no_connect
    outputs: type[BaseModel] = NoOutputs
    mock_outputs: BaseModel | None = None
    sensitive: tuple[SensitiveInput, ...] = ()
    provider_subdir: bool = False
    priority: int = 0
    kind: StageKind = "terraform"
    driver: StageDriver | None = None
    check: Callable[[CheckContext], None] | None = None
    preflight: Callable[[CheckContext], None] | None = None
    machine_inputs: Callable[[MachineContext], Mapping[str, Any]] | None = None
    source: str = "stagegraph"
    extras: Mapping[str, Any] = field(default_factory=dict)

    def directory(self, provider: str) -> PurePosixPath:
        """The stage directory relative to the output root (Nebari's per-stage layout)."""
        base = PurePosixPath(self.name)
        return base / provider if self.provider_subdir else base
