"""The driver of manifest stages: YAML files applied with server-side apply.

A manifest stage renders `crds/*.yaml` and `manifests/*.yaml` (what `kubectl apply
--server-side -f crds/ -f manifests/` would take by hand). The driver applies them in that
order, files sorted by name, and deletes what the previous apply created but the new
render no longer has (a check for a service that was switched off). The engine around it
(fingerprints, records, locking) is the same as for Terraform stages, so these stages are
just as incremental and crash-safe.

What was applied is kept in an inventory file in the stage directory, written before the
cluster is touched (old and new objects together) and narrowed after: a run killed at any
point leaves every object it may have created listed, so the next apply prunes or the next
destroy deletes it.

In the sandbox there is no cluster: the stage also renders a `main.tf.json` of
`terraform_data` twins (one per manifest) and the driver hands the stage to Terraform.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from stagegraph.atomic import write_atomic
from stagegraph.driver import TERRAFORM, ApplyResult, StageContext
from stagegraph.errors import DeployError
from stagegraph.kube.apply import (
    Manifest,
    ManifestError,
    ObjectRef,
    Resolver,
    apply_manifest,
    delete_object,
    get_object,
    ref_of,
    would_change,
)
from stagegraph.kube.client import KubeTarget, connect

#: Applied in this order: CRDs before the objects that may use them.
MANIFEST_DIRS = ("crds", "manifests")
INVENTORY = ".stagegraph-applied.json"

Source = tuple[str, Manifest]
#: Outputs of the stage from its variables and the manifests it applied (same shape as
#: the sandbox twin's Terraform outputs).
OutputsFn = Callable[[StageContext, Sequence[Manifest]], Mapping[str, Any]]
#: Extra consistency checks on the manifests before anything is applied.
VerifyFn = Callable[[StageContext, Sequence[Source]], None]


def load_manifests(stage_dir: Path, dirs: Sequence[str] = MANIFEST_DIRS) -> list[Source]:
    """Every object of the `*.yaml` files under `dirs`, in apply order, with its file name."""
    out: list[Source] = []
    for folder in dirs:
        for path in sorted((stage_dir / folder).glob("*.yaml")):
            rel = f"{folder}/{path.name}"
            try:
                docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                line = f" (line {mark.line + 1})" if mark is not None else ""
                raise ManifestError(
                    f"{path}: not valid YAML{line}; re-render the stage with `doit render`"
                ) from None
            except OSError as exc:
                raise ManifestError(f"{path}: cannot read: {exc.strerror}") from None
            for doc in docs:
                if doc is not None:
                    ref_of(doc, rel)  # fail on a malformed object before touching the cluster
                    out.append((rel, doc))
    return out


def read_inventory(stage_dir: Path) -> list[ObjectRef] | None:
    """The objects the last apply may have created; None when there is no inventory."""
    try:
        data = json.loads((stage_dir / INVENTORY).read_text(encoding="utf-8"))
        return [ObjectRef.from_json(item) for item in data["objects"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DeployError(
            f"{stage_dir / INVENTORY}: unreadable inventory of applied objects ({type(exc).__name__}); "
            "restore it from the last run or delete the stage's objects by hand, then remove the file"
        ) from None


def write_inventory(stage_dir: Path, refs: Sequence[ObjectRef]) -> None:
    data = {"objects": [ref.to_json() for ref in refs]}
    write_atomic(stage_dir / INVENTORY, json.dumps(data, indent=2, sort_keys=True) + "\n")


def target_of(ctx: StageContext) -> KubeTarget:
    """The cluster of the stage, from its `kubeconfig_path` / `kube_context` inputs."""
    path = ctx.variables.get("kubeconfig_path")
    if not isinstance(path, str) or not path:
        raise DeployError(
            f"stage {ctx.stage.name}: a manifest stage needs a kubeconfig_path input "
            "(from 02-infrastructure); add it to the stage's inputs and connect"
        )
    context = ctx.variables.get("kube_context")
    return KubeTarget(path, context if isinstance(context, str) and context else None)


class _Log:
    """Every line to the stage's log file; the console filter shows progress lines."""

    def __init__(self, ctx: StageContext, handle: IO[str]) -> None:
        self._ctx = ctx
        self._handle = handle

    def __call__(self, text: str) -> None:
        self._handle.write(text + "\n")
        self._handle.flush()
        self._ctx.line(text)


@contextmanager
def _logged(ctx: StageContext) -> Iterator[_Log]:
    ctx.log_path.parent.mkdir(parents=True, exist_ok=True)
    with ctx.log_path.open("w", encoding="utf-8") as handle:
        yield _Log(ctx, handle)


_DONE = {"created": "Creation complete", "configured": "Modifications complete", "unchanged": "unchanged"}

#: How long a CRD may take to become Established before the stage fails (seconds).
ESTABLISH_TIMEOUT = 60.0


def wait_established(
    client: Any,
    resolver: Resolver,
    crds: Sequence[tuple[str, ObjectRef]],
    log: Callable[[str], None],
    timeout: float | None = None,
) -> None:
    """Wait until every CRD reports the condition Established=True, or fail naming it."""
    timeout = ESTABLISH_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    delay = 0.1
    for src, ref in crds:
        while True:
            obj = get_object(client, resolver, ref, src) or {}
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                break
            if time.monotonic() + delay > deadline:
                raise DeployError(
                    f"{src}: {ref.describe()} is not Established after {timeout:g}s; see "
                    f"`kubectl get crd {ref.name} -o yaml` (status.conditions), then deploy again"
                )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    log(f"{len(crds)} CRD(s) Established")


@dataclass(frozen=True)
class ManifestDriver:
    """Apply, plan and destroy a stage of YAML manifests (Terraform twins in the sandbox)."""

    outputs: OutputsFn
    verify: VerifyFn | None = None
    dirs: tuple[str, ...] = MANIFEST_DIRS

    def _load(self, ctx: StageContext, *, verify: bool) -> list[Source]:
        docs = load_manifests(ctx.stage_dir, self.dirs)
        # Not for plans: they may run against mock upstream outputs, which verify nothing.
        if verify and self.verify is not None:
            self.verify(ctx, docs)
        return docs

    # --- apply ------------------------------------------------------------------------

    def apply(self, ctx: StageContext) -> ApplyResult:
        docs = self._load(ctx, verify=True)
        if ctx.sandbox:
            return TERRAFORM.apply(ctx)
        return self._apply_docs(ctx, docs)

    def _apply_docs(self, ctx: StageContext, docs: Sequence[Source]) -> ApplyResult:
        new = [ref_of(m, src) for src, m in docs]
        old = read_inventory(ctx.stage_dir) or []
        stale = [ref for ref in old if ref not in new]
        with connect(target_of(ctx)) as client, _logged(ctx) as log:
            # Listed before the first write: a crash from here on leaves nothing untracked.
            write_inventory(ctx.stage_dir, [*stale, *new])
            resolver = Resolver(client)
            pending: list[tuple[str, ObjectRef]] = []
            for src, manifest in docs:
                if pending and manifest.get("kind") != "CustomResourceDefinition":
                    # Objects after CRDs may be of their kinds: the API server serves a kind
                    # only once its CRD is Established, a moment after the apply.
                    wait_established(client, resolver, pending, log)
                    pending = []
                done = apply_manifest(client, resolver, manifest, src)
                log(f"{done.ref.describe()}: {_DONE[done.action]} ({src})")
                if manifest.get("kind") == "CustomResourceDefinition":
                    pending.append((src, done.ref))
            if pending:
                wait_established(client, resolver, pending, log)
            for ref in reversed(stale):
                gone = delete_object(client, resolver, ref)
                log(
                    f"{ref.describe()}: {'Destruction complete' if gone else 'already gone'} (no longer rendered)"
                )
            write_inventory(ctx.stage_dir, new)
            log(f"Apply complete: {len(new)} object(s) applied, {len(stale)} pruned")
            runner = f"kubernetes server-side apply ({client.host})"
        return ApplyResult(dict(self.outputs(ctx, [m for _, m in docs])), runner=runner)

    # --- plan ---------------------------------------------------------------------------

    def plan(self, ctx: StageContext, out: Path) -> bool:
        docs = self._load(ctx, verify=False)
        if ctx.sandbox:
            return TERRAFORM.plan(ctx, out)
        new = [ref_of(m, src) for src, m in docs]
        stale = [ref for ref in read_inventory(ctx.stage_dir) or [] if ref not in new]
        with connect(target_of(ctx)) as client, _logged(ctx) as log:
            resolver = Resolver(client)
            changes = []
            for src, manifest in docs:
                if would_change(client, resolver, manifest, src):
                    changes.append(src)
                    log(f"{ref_of(manifest, src).describe()}: would be created or changed ({src})")
            for ref in stale:
                log(f"{ref.describe()}: would be deleted (no longer rendered)")
            log(f"Plan: {len(changes)} to apply, {len(stale)} to delete")
        # The saved plan is the exact objects to apply, like a Terraform plan file.
        plan = {"stage": ctx.stage.name, "objects": [[src, m] for src, m in docs]}
        write_atomic(out, json.dumps(plan, indent=2, sort_keys=True) + "\n", mode=0o600)
        return bool(changes or stale)

    def apply_plan(self, ctx: StageContext, plan: Path) -> ApplyResult:
        if ctx.sandbox:
            return TERRAFORM.apply_plan(ctx, plan)
        try:
            data = json.loads(plan.read_text(encoding="utf-8"))
            docs = [(str(src), dict(m)) for src, m in data["objects"]]
        except (OSError, ValueError, KeyError, TypeError):
            raise DeployError(f"{plan}: unreadable saved plan; run `doit plan` again") from None
        if self.verify is not None:
            self.verify(ctx, docs)
        return self._apply_docs(ctx, docs)

    # --- destroy --------------------------------------------------------------------------

    def destroy(self, ctx: StageContext) -> None:
        if ctx.sandbox:
            TERRAFORM.destroy(ctx)
            return
        refs = read_inventory(ctx.stage_dir)
        if refs is None:
            # No inventory (the stage directory was wiped): what is rendered now, like
            # `kubectl delete -f`.
            refs = [ref_of(m, src) for src, m in load_manifests(ctx.stage_dir, self.dirs)]
        if not refs:
            return
        with connect(target_of(ctx)) as client, _logged(ctx) as log:
            resolver = Resolver(client)
            for ref in reversed(refs):
                gone = delete_object(client, resolver, ref)
                log(f"{ref.describe()}: {'Destruction complete' if gone else 'already gone'}")
            log(f"Destroy complete: {len(refs)} object(s)")
        write_inventory(ctx.stage_dir, [])
