"""Plugin stages that bring their own deploy, check and destroy steps (Nebari's interface).

A `CustomStage` subclass is written as for Nebari: `deploy(stage_outputs)` is a context
manager that sets `stage_outputs[self.name]` for later stages, `check(stage_outputs)` runs
after the deploy, `destroy(stage_outputs, status)` is a context manager that sets
`status[self.name]`. `CustomDriver` runs it as a `StageDriver`, so the engine gives it
the same incremental, crash-safe behaviour as a Terraform stage:

- the stage renders a small descriptor, `stage.json`, holding what its steps read from
  the config (`render_inputs`) and its `version`; with the upstream outputs (its
  variables) that is the fingerprint, so the stage re-deploys exactly when one changes;
- a deploy that raises is recorded as failed and retried on the next deploy;
- outputs are checked against the stage's `outputs` model and recorded, so downstream
  stages (Terraform or custom) read them by type, as for any stage.

Unlike Nebari, each deploy context closes as soon as its stage is done (stages are
separate doit tasks, and may run in separate processes): hand data to later stages
through `stage_outputs`, not environment variables.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from stagegraph.driver import ApplyResult, StageContext
from stagegraph.errors import DeployError, StagegraphError
from stagegraph.stage import NoOutputs, RenderContext, Rendered, Stage, StageIO, Upstream
from stagegraph.views import jsonable

DESCRIPTOR = "stage.json"

#: stage name -> that stage's outputs as plain JSON data (Nebari's `stage_outputs`).
StageOutputs = dict[str, dict[str, Any]]


class CustomInputs(StageIO):
    """The outputs of every stage a custom stage depends on, as its one variable."""

    stage_outputs: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Outputs of each upstream stage, by stage name."
    )


@dataclass(frozen=True)
class CustomContext:
    """What a custom stage's steps may use besides `stage_outputs`."""

    stage: str
    stage_dir: Path
    provider: str
    inputs: Mapping[str, Any]
    line: Callable[[str], None] = field(default=lambda _: None)

    @property
    def sandbox(self) -> bool:
        """True on the sandbox provider: skip anything that needs a real cluster."""
        return self.provider == "sandbox"


class CustomStage:
    """Base class of a plugin stage with its own steps; override the class attributes.

    `config_sections` are the config paths `render_inputs` reads (by default their values
    are what it returns); the render reads only those, and the values reach the steps as
    `self.inputs`. Bump `version` when a change to the steps' code should re-deploy.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    priority: ClassVar[int] = 0
    depends_on: ClassVar[tuple[str, ...]] = ()
    config_sections: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[type[BaseModel]] = NoOutputs
    mock_outputs: ClassVar[BaseModel | None] = None
    version: ClassVar[str] = "1"

    def __init__(self, context: CustomContext) -> None:
        self.context = context

    @property
    def inputs(self) -> Mapping[str, Any]:
        """What `render_inputs` returned at the last render (from stage.json)."""
        return self.context.inputs

    @classmethod
    def render_inputs(cls, ctx: RenderContext) -> dict[str, Any]:
        """The config values the steps need; pure, and only from declared sections."""
        out: dict[str, Any] = {}
        for path in cls.config_sections:
            node: Any = ctx.config
            for part in path.split("."):
                node = getattr(node, part)
            out[path] = jsonable(node)
        return out

    @contextlib.contextmanager
    def deploy(self, stage_outputs: StageOutputs) -> Iterator[None]:
        """Create or update what the stage manages; set `stage_outputs[self.name]`."""
        yield

    def check(self, stage_outputs: StageOutputs) -> None:
        """Raise if the deploy did not do its job (runs after deploy, in the sandbox too)."""

    @contextlib.contextmanager
    def destroy(self, stage_outputs: StageOutputs, status: dict[str, bool]) -> Iterator[None]:
        """Remove what the stage manages; set `status[self.name]` to False on failure."""
        yield


def _connect(up: Upstream) -> CustomInputs:
    # Upstream only offers typed lookups; a custom stage takes every upstream's outputs
    # as plain data (Nebari's stage_outputs), so read the mapping behind it.
    outputs: Mapping[str, BaseModel] = up._outputs
    return CustomInputs(stage_outputs={k: v.model_dump(mode="json") for k, v in sorted(outputs.items())})


def _render_for(cls: type[CustomStage]) -> Callable[[RenderContext], Rendered]:
    def render(ctx: RenderContext) -> Rendered:
        return {
            DESCRIPTOR: {
                "//": f"{cls.name}: a plugin stage with its own deploy steps; generated by stagegraph.",
                "stage": cls.name,
                "class": cls.__qualname__,
                "version": cls.version,
                "inputs": cls.render_inputs(ctx),
            }
        }

    # The render's code digest follows the plugin's module, not this adapter.
    render.__module__ = cls.__module__
    render.__qualname__ = f"{cls.__qualname__}.render"
    return render


def as_stage(cls: type[CustomStage], source: str) -> Stage:
    """The engine's view of a custom stage class."""
    return Stage(
        name=cls.name,
        description=cls.description or (cls.__doc__ or cls.__name__).strip().splitlines()[0],
        render=_render_for(cls),
        depends_on=tuple(cls.depends_on),
        config_sections=tuple(cls.config_sections),
        inputs=CustomInputs,
        connect=_connect,
        outputs=cls.outputs,
        mock_outputs=cls.mock_outputs,
        priority=cls.priority,
        kind="custom",
        driver=CustomDriver(cls, source),
        source=source,
    )


class CustomDriver:
    """Runs a `CustomStage`'s steps as a `StageDriver`."""

    def __init__(self, cls: type[CustomStage], source: str) -> None:
        self.cls = cls
        self.source = source

    def _instance(self, ctx: StageContext) -> CustomStage:
        path = ctx.stage_dir / DESCRIPTOR
        try:
            descriptor = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise DeployError(f"{path}: stage {ctx.stage.name} is not rendered; run `doit render`") from None
        context = CustomContext(
            stage=ctx.stage.name,
            stage_dir=ctx.stage_dir,
            # A rehearsal is offline like the sandbox: custom steps see it as the sandbox.
            provider="sandbox" if ctx.sandbox else ctx.provider,
            inputs=descriptor.get("inputs", {}),
            line=ctx.line,
        )
        return self.cls(context)

    def _fail(self, ctx: StageContext, step: str, exc: BaseException) -> DeployError:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        kind = "" if isinstance(exc, StagegraphError) else f"{type(exc).__name__}: "
        return DeployError(
            f"stage {ctx.stage.name} (plugin {self.source}): {step} failed: {kind}{detail}; "
            "fix it and deploy again (the stage is retried)"
        )

    def apply(self, ctx: StageContext) -> ApplyResult:
        stage = self._instance(ctx)
        stage_outputs: StageOutputs = {k: dict(v) for k, v in ctx.variables.get("stage_outputs", {}).items()}
        step = "deploy"
        try:
            with stage.deploy(stage_outputs):
                step = "check"
                stage.check(stage_outputs)
        except Exception as exc:  # the plugin's code: any failure fails the stage, not us
            raise self._fail(ctx, step, exc) from exc
        produced = stage_outputs.get(ctx.stage.name, {})
        if not isinstance(produced, Mapping):
            raise DeployError(
                f"stage {ctx.stage.name} (plugin {self.source}): deploy set stage_outputs"
                f"[{ctx.stage.name!r}] to a {type(produced).__name__}; set it to a dict"
            )
        return ApplyResult(outputs=dict(produced), runner=f"custom stage ({self.source})")

    def plan(self, ctx: StageContext, out: Path) -> bool:
        # A custom stage has no dry run: say so, and report that applying would deploy it.
        ctx.line("custom stage: no plan; applying it runs its deploy step")
        return True

    def apply_plan(self, ctx: StageContext, plan: Path) -> ApplyResult:
        return self.apply(ctx)

    def destroy(self, ctx: StageContext) -> None:
        stage = self._instance(ctx)
        stage_outputs: StageOutputs = {k: dict(v) for k, v in ctx.variables.get("stage_outputs", {}).items()}
        if ctx.record is not None:
            stage_outputs[ctx.stage.name] = dict(ctx.record.outputs)
        status: dict[str, bool] = {}
        try:
            with stage.destroy(stage_outputs, status):
                pass
        except Exception as exc:
            raise self._fail(ctx, "destroy", exc) from exc
        if status.get(ctx.stage.name) is False:
            raise DeployError(
                f"stage {ctx.stage.name} (plugin {self.source}): destroy reported failure "
                f"(status[{ctx.stage.name!r}] is False); see its output above, fix it and destroy again"
            )
