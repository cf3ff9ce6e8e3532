"""What the next `doit deploy` will do with each stage, decided the way the deploy decides.

The deploy renders, then applies a stage when the fingerprint of its inputs differs from
its last successful apply; the inputs include the variables taken from upstream outputs,
and those are the outputs of the upstream's *new* apply when it re-applies first. So a
prediction walks the graph in runtime order, and for each stage that will apply, predicts
its outputs (`stagegraph.tfpredict`, or a plan's known values) and feeds them downstream:

- `stale via 04-kubernetes-ingress: var:domain`: a current stage whose upstream will
  re-apply with an output it reads changed;
- `deferred`: it reads an output known only after the upstream applies ("planned after
  04-kubernetes-ingress applies", Terraform Stacks' deferred change);
- a current stage whose upstream re-applies with the same outputs stays `applied`.

Every input comes from `stagegraph.inputs.stage_inputs`, the assembly deploy uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from stagegraph.errors import StagegraphError
from stagegraph.fingerprint import FINGERPRINTED, changed_inputs
from stagegraph.inputs import StageInputs, recorded_outputs, stage_inputs, upstream_outputs, variables_from
from stagegraph.render import hand_edits
from stagegraph.tfexpr import UNKNOWN
from stagegraph.tfpredict import predict_outputs
from stagegraph.tfstate import StateError, check_state

if TYPE_CHECKING:
    from stagegraph.project import Project
    from stagegraph.stage import Stage

#: Said of a stage whose first apply failed: Terraform may have created part of it.
FIRST_APPLY_FAILED = (
    "resources of its first apply may already exist; the next deploy retries it, `doit destroy` removes them"
)

#: States after which the next deploy applies the stage.
WILL_APPLY = ("stale", "never applied", "failed", "destroyed")


@dataclass(frozen=True)
class StageState:
    stage: str
    state: str  # applied | stale | deferred | never applied | failed | destroyed | state lost | unknown
    applied_at: datetime | None
    reasons: tuple[str, ...]
    #: The upstream stages through which it is stale or deferred.
    via: tuple[str, ...] = ()
    #: Things worth knowing that do not change the decision (a hand-edited file).
    notes: tuple[str, ...] = ()

    @property
    def will_apply(self) -> bool:
        return self.state in WILL_APPLY

    @property
    def note(self) -> str:
        """One line for `status`: `via 04-kubernetes-ingress: var:domain, var:base_url`."""
        if self.state == "stale" and self.via:
            mine = [r.split(": ")[0] for r in self.reasons if r.endswith(f" via {self.via[0]}")]
            return f"via {self.via[0]}: {', '.join(mine)}"
        return next(iter([*self.reasons, *self.notes]), "")


@dataclass
class _Walk:
    """Predicted outputs of the stages that will apply, as the walk goes."""

    outputs: dict[str, BaseModel] = field(default_factory=dict)
    #: stage -> its outputs known only after it applies.
    unknown: dict[str, tuple[str, ...]] = field(default_factory=dict)


def predict(project: Project, names: Iterable[str] | None = None) -> dict[str, StageState]:
    """The next deploy's decision for `names` (default: every stage), in runtime order."""
    graph = project.graph
    wanted = graph.ancestors(names) if names is not None else graph.names
    walk = _Walk()
    states: dict[str, StageState] = {}
    for name in wanted:
        stage = graph[name]
        state, inputs = _decide(project, stage, walk)
        states[name] = state
        if state.will_apply or state.state in ("deferred", "unknown"):
            _remember_outputs(project, stage, state, inputs, walk)
    return states


def _decide(project: Project, stage: Stage, walk: _Walk) -> tuple[StageState, StageInputs | None]:
    name = stage.name
    try:
        record = project.records.get(name)
    except StagegraphError as exc:  # a corrupt record: say so, keep the view usable
        return StageState(name, "unknown", None, (str(exc),)), None
    notes = tuple(f"{f}: {_EDITED}" for f in hand_edits(project.stage_dir(stage)))
    waiting = {
        dep: walk.unknown[dep]
        for dep in stage.depends_on
        if dep in walk.unknown and _reads_unknown(project, stage, dep, walk)
    }
    try:
        now = stage_inputs(project, stage, files="fresh", upstream=_known(stage, walk))
    except StagegraphError as exc:
        now = None
        problem: str | None = str(exc)
    else:
        problem = None
    applied_at = record.applied_at if record is not None else None
    if record is None:
        return StageState(name, "never applied", None, (), notes=notes), now
    if record.status == "destroyed":
        return StageState(name, "destroyed", applied_at, (), notes=notes), now
    try:
        older_state = check_state(name, project.stage_dir(stage), record.state)
    except StateError as exc:
        return StageState(name, "state lost", applied_at, (str(exc),), notes=notes), None
    if record.status == "failed":
        if record.applied_at is not None:
            return StageState(name, "failed", applied_at, (record.error or "",), notes=notes), now
        if record.log is None:  # only ever planned, or stopped before anything ran
            return StageState(name, "never applied", None, (record.error or "",), notes=notes), now
        return StageState(name, "failed", None, (record.error or "", FIRST_APPLY_FAILED), notes=notes), now
    if older_state:
        return StageState(name, "stale", applied_at, (older_state,), notes=notes), now
    if now is None:
        if waiting:
            return _deferred(name, applied_at, waiting, notes), None
        return StageState(name, "stale", applied_at, (problem or "",), notes=notes), None
    if now.fingerprint == record.fingerprint:
        if waiting:
            return _deferred(name, applied_at, waiting, notes), now
        return StageState(name, "applied", applied_at, (), notes=notes), now
    reasons, via = _explain(project, stage, record.inputs, now, walk)
    return StageState(name, "stale", applied_at, tuple(reasons), tuple(via), notes), now


_EDITED = (
    "edited since it was rendered; `doit deploy` renders over it, "
    "`doit deploy --disable-render` would apply the edit"
)


def _deferred(
    name: str, applied_at: datetime | None, waiting: Mapping[str, tuple[str, ...]], notes: tuple[str, ...]
) -> StageState:
    reasons = tuple(
        f"planned after {dep} applies: its output{'s' if len(fields) > 1 else ''} "
        f"{', '.join(fields)} {'are' if len(fields) > 1 else 'is'} known only then"
        for dep, fields in waiting.items()
    )
    return StageState(name, "deferred", applied_at, reasons, tuple(waiting), notes)


def _known(stage: Stage, walk: _Walk) -> dict[str, BaseModel]:
    return {dep: walk.outputs[dep] for dep in stage.depends_on if dep in walk.outputs}


def _explain(
    project: Project, stage: Stage, old: Mapping[str, str], now: StageInputs, walk: _Walk
) -> tuple[list[str], list[str]]:
    """`why` lines, and the upstreams whose new outputs change a variable of `stage`.

    Lines of inputs changed by an upstream read `var:domain: changed via <upstream>`. A
    stage with changes of its own lists those first and is not "stale via" anyone.
    """
    try:
        recorded, _ = upstream_outputs(project, stage)
    except StagegraphError:
        recorded = {}
    changed_by: dict[str, str] = {}
    for dep, predicted in _known(stage, walk).items():
        try:
            before = variables_from(project, stage, recorded) if dep in recorded else {}
            after = variables_from(project, stage, {**recorded, dep: predicted})
        except (StagegraphError, ValidationError):
            continue
        for key, value in after.items():
            if dep not in recorded or before.get(key) != value:
                changed_by.setdefault(f"var:{key}", dep)
    own: list[str] = []
    via: list[str] = []
    for line in changed_inputs(old, now.inputs):
        key = line.split(": ")[0]
        if key in changed_by:
            via.append(f"{line} via {changed_by[key]}")
        else:
            own.append(line)
    if any(line.startswith(FINGERPRINTED) for line in own):
        return [*own, *via], []
    return [*via, *own], list(dict.fromkeys(line.rsplit(" via ", 1)[1] for line in via))


#: Stands in for an output known only after apply, to see whether a stage reads it.
_PROBE = "(stagegraph: known after apply, 9d1c7a)"


def _reads_unknown(project: Project, stage: Stage, dep: str, walk: _Walk) -> bool:
    base = walk.outputs.get(dep)
    if base is None:
        return True  # nothing stands in for them: everything of `dep` is unknown
    return reads_outputs(project, stage, {**_known(stage, walk), dep: base}, dep, walk.unknown[dep])


def reads_outputs(
    project: Project, stage: Stage, upstream: Mapping[str, BaseModel], dep: str, fields: Sequence[str]
) -> bool:
    """Whether `stage`'s variables depend on those `fields` of `dep`'s outputs.

    Found by trying: the fields get a stand-in value, and the variables either carry it
    or the stage's typed inputs refuse it.
    """
    base = upstream[dep]
    probed = base.model_construct(**{**dict(base), **dict.fromkeys(fields, _PROBE)})
    try:
        outputs, _ = upstream_outputs(project, stage, override={**upstream, dep: probed})
        variables = variables_from(project, stage, outputs)
    except Exception:
        return True
    return _PROBE in repr(variables)


def _remember_outputs(
    project: Project,
    stage: Stage,
    state: StageState,
    inputs: StageInputs | None,
    walk: _Walk,
) -> None:
    """Predict what `stage` outputs after it applies, for the stages downstream.

    Outputs known only after the apply are listed in `walk.unknown`; the recorded values
    stand in for them in `walk.outputs`, so a stage that does not read them is judged by
    the rest (and `_reads_unknown` tells which stages do).
    """
    fields = tuple(stage.outputs.model_fields)
    if not fields:
        return
    values: Mapping[str, Any] = {}
    if inputs is not None and inputs.fresh_files and state.state != "deferred":
        values = predict_outputs(inputs.fresh_files, inputs.variables)
    known = {
        f: values[f] for f in fields if f in values and values[f] is not UNKNOWN and _known_deep(values[f])
    }
    unknown = tuple(f for f in fields if f not in known)
    base: dict[str, Any] = dict(known)
    if unknown:
        walk.unknown[stage.name] = unknown
        try:
            recorded = recorded_outputs(project, stage.name)
        except StagegraphError:
            recorded = None
        if recorded is None:
            return
        base = {**recorded.model_dump(mode="json"), **known}
    try:
        walk.outputs[stage.name] = stage.outputs.model_validate(base)
    except ValidationError:
        walk.unknown[stage.name] = fields


def _known_deep(value: Any) -> bool:
    from stagegraph.tfexpr import is_known

    return is_known(value)
