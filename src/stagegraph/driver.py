"""How a stage is applied: the driver protocol, and the Terraform driver.

The engine (`stagegraph.deploy`) owns everything around an apply: inputs, fingerprints,
records, locking, output. A driver only turns a rendered stage directory plus variables
into outputs. Terraform is the default driver; stages made of Kubernetes manifests and
plugin stages bring their own, and get the same incremental, crash-safe behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stagegraph.errors import DeployError
from stagegraph.fingerprint import value_digest

if TYPE_CHECKING:
    from stagegraph.records import StageRecord
    from stagegraph.stage import Stage
    from stagegraph.terraform import Terraform, TerraformBinary

TFVARS = "stagegraph.tfvars.json"


@dataclass
class StageContext:
    """Everything a driver may use for one stage and one action."""

    stage: Stage
    stage_dir: Path
    provider: str
    variables: dict[str, Any]
    secret_env: Mapping[str, str]
    record: StageRecord | None
    log_path: Path
    line: Callable[[str], None]
    terraform_binary: Callable[[], TerraformBinary]
    rehearse: bool = False

    @property
    def sandbox(self) -> bool:
        return self.provider == "sandbox" or self.rehearse


@dataclass(frozen=True)
class ApplyResult:
    """Raw outputs (validated by the engine against the stage's model) and driver notes."""

    outputs: Mapping[str, Any]
    runner: str | None = None
    init_digest: str | None = None


class StageDriver(Protocol):
    """Apply, plan and destroy one stage. Raise a StagegraphError on failure."""

    def apply(self, ctx: StageContext) -> ApplyResult: ...

    def plan(self, ctx: StageContext, out: Path) -> bool: ...

    def apply_plan(self, ctx: StageContext, plan: Path) -> ApplyResult: ...

    def destroy(self, ctx: StageContext) -> None: ...


# --- Terraform -------------------------------------------------------------------------------


def init_digest(stage_dir: Path) -> str:
    """Digest of what `terraform init` depends on: the terraform blocks (providers, backend)."""
    blocks = []
    for path in sorted(stage_dir.glob("*.tf.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        blocks.append(doc.get("terraform"))
        blocks.append(sorted(doc.get("provider", {})))
    return value_digest(blocks)


def _needs_working_dir(stage_dir: Path) -> bool:
    """Whether init leaves a `.terraform/` behind: only with providers to install or a backend."""
    for path in stage_dir.glob("*.tf.json"):
        try:
            block = json.loads(path.read_text(encoding="utf-8")).get("terraform", {})
        except (OSError, ValueError):
            continue
        if block.get("required_providers") or block.get("backend"):
            return True
    return False


def private_state(stage_dir: Path) -> None:
    """State holds the only plaintext secrets we allow anywhere: keep it owner-only."""
    for path in stage_dir.glob("terraform.tfstate*"):
        path.chmod(0o600)


def write_tfvars(ctx: StageContext) -> None:
    from stagegraph.atomic import write_atomic

    text = json.dumps(ctx.variables, indent=2, sort_keys=True) + "\n"
    write_atomic(ctx.stage_dir / TFVARS, text)


class TerraformDriver:
    """terraform (or tofu, or the embedded Terraform) in the rendered stage directory."""

    def _tf(self, ctx: StageContext) -> Terraform:
        from stagegraph.terraform import Terraform

        return Terraform(
            binary=ctx.terraform_binary(),
            workdir=ctx.stage_dir,
            log_path=ctx.log_path,
            extra_env=dict(ctx.secret_env),
            on_line=ctx.line,
        )

    def _ensure_init(self, tf: Terraform, ctx: StageContext) -> str:
        """Run `terraform init` only when providers or backend changed (or the cache is gone)."""
        digest = init_digest(ctx.stage_dir)
        lost = _needs_working_dir(ctx.stage_dir) and not (ctx.stage_dir / ".terraform").exists()
        if ctx.record is None or ctx.record.init_digest != digest or lost:
            tf.init()
        return digest

    def _ensure_written(self, ctx: StageContext) -> None:
        if not any(ctx.stage_dir.glob("*.tf.json")):
            raise DeployError(
                f"stage {ctx.stage.name} is not written yet for provider {ctx.provider!r} "
                f"(see {ctx.stage_dir}/NOT-WRITTEN-YET.md); deploy the stages before it with "
                "`doit deploy --stop-at <stage>`, or try the sandbox provider"
            )

    def _outputs(self, tf: Terraform) -> dict[str, Any]:
        return {k: v.value for k, v in tf.output().items() if not v.sensitive}

    def apply(self, ctx: StageContext) -> ApplyResult:
        self._ensure_written(ctx)
        write_tfvars(ctx)
        tf = self._tf(ctx)
        init = self._ensure_init(tf, ctx)
        try:
            tf.apply(var_files=[TFVARS])
        finally:
            private_state(ctx.stage_dir)
        return ApplyResult(self._outputs(tf), tf.binary.describe(), init)

    def plan(self, ctx: StageContext, out: Path) -> bool:
        self._ensure_written(ctx)
        write_tfvars(ctx)
        tf = self._tf(ctx)
        self._ensure_init(tf, ctx)
        changes = tf.plan(var_files=[TFVARS], out=out)
        out.chmod(0o600)  # a saved plan holds sensitive values, like state
        return changes

    def apply_plan(self, ctx: StageContext, plan: Path) -> ApplyResult:
        tf = self._tf(ctx)
        try:
            tf.apply(plan_file=plan)
        finally:
            private_state(ctx.stage_dir)
        return ApplyResult(self._outputs(tf), tf.binary.describe(), init_digest(ctx.stage_dir))

    def destroy(self, ctx: StageContext) -> None:
        if not any(ctx.stage_dir.glob("*.tf.json")):
            return  # nothing was ever applied from a stage that is not written
        write_tfvars(ctx)
        tf = self._tf(ctx)
        self._ensure_init(tf, ctx)
        try:
            tf.destroy(var_files=[TFVARS])
        finally:
            private_state(ctx.stage_dir)


TERRAFORM = TerraformDriver()
