"""The registry of config migrations: one `Step` per Nebari release, found by version.

Steps register themselves with `@step(version, summary)` when their module is imported;
`stagegraph.upgrade.steps` imports them all, so use STEPS through that module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stagegraph.upgrade.model import StepContext
from stagegraph.upgrade.versions import parse

#: Nebari's provider name -> the config key of its section.
PROVIDER_KEYS = {
    "local": "local",
    "existing": "existing",
    "do": "digital_ocean",
    "aws": "amazon_web_services",
    "gcp": "google_cloud_platform",
    "azure": "azure",
}
CLOUDS = ("aws", "gcp", "azure")


@dataclass(frozen=True)
class Step:
    version: str
    summary: str
    run: Callable[[StepContext], None]


STEPS: dict[str, Step] = {}


def step(
    version: str, summary: str
) -> Callable[[Callable[[StepContext], None]], Callable[[StepContext], None]]:
    """Register `fn` as the migration to `version` (one per version, a full release)."""

    def register(fn: Callable[[StepContext], None]) -> Callable[[StepContext], None]:
        if version in STEPS:
            raise ValueError(f"two upgrade steps for {version}")
        if str(parse(version)) != version:
            raise ValueError(f"upgrade step {version}: use a full release version")
        STEPS[version] = Step(version, summary, fn)
        return fn

    return register


def steps_between(start: str, finish: str) -> Iterator[Step]:
    """The steps after `start` up to and including `finish`, in version order."""
    low, high = parse(start), parse(finish)
    for version in sorted(STEPS, key=parse):
        if low < parse(version) <= high:
            yield STEPS[version]


def provider_of(ctx: StepContext) -> str:
    provider = ctx.config.get("provider")
    if isinstance(provider, str):
        return provider
    present = [p for p, key in PROVIDER_KEYS.items() if key in ctx.config]
    return present[0] if len(present) == 1 else "local"
