"""Fields whose change would replace the cluster or lose data, checked before any apply.

Each applied stage records the values of these fields it was applied with (its record's
`immutable`). Before a deploy runs any Terraform, the current config is compared with the
newest applied record holding each field; a difference is refused with one line naming
the field and why it cannot simply change, unless the user passes
`doit deploy --allow-change FIELD` for exactly that field. The next successful apply
records the new value, so the flag is needed once.

The table is the single place to add a field (dotted path -> why it is immutable). Kube
contexts are not in it: their names are per machine (a CI runner may call the same
cluster something else), so they say nothing about which cluster it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from stagegraph.errors import DeployError

if TYPE_CHECKING:
    from stagegraph.records import StageRecord
    from stagegraph.schema.config import NebariConfig

IMMUTABLE: dict[str, str] = {
    "project_name": "it names the cluster and its resources; a new name builds a second deployment "
    "and orphans the first",
    "provider": "a different provider is a different cluster; the state of the old one would be abandoned",
    "namespace": "every service and volume lives in it; a new namespace starts empty (user data stays "
    "in the old one)",
    "storage.type": "a new storage backend starts empty; the users' files stay on the old one",
    "terraform_state.type": "moving Terraform state between backends is a migration, not a config change",
    "amazon_web_services.region": "the cluster and its volumes cannot move region; a new one is built",
    "google_cloud_platform.project": "the cluster cannot move project; a new one is built",
    "google_cloud_platform.region": "the cluster and its volumes cannot move region; a new one is built",
    "azure.region": "the cluster and its volumes cannot move region; a new one is built",
    "azure.resource_group_name": "the cluster lives in its resource group; a new group builds a new cluster",
}


class ImmutableFieldError(DeployError):
    """A field that cannot change after the first deploy changed."""


def _value(config: Any, dotted: str) -> Any:
    node = config
    for part in dotted.split("."):
        node = getattr(node, part, None) if node is not None else None
    return node


#: Fields whose null means a default that depends on other fields: compare what is meant.
_EFFECTIVE: dict[str, Callable[[NebariConfig, Any], Any]] = {
    "storage.type": lambda config, value: value or ("efs" if config.provider == "aws" else "nfs"),
}


def immutable_values(config: NebariConfig) -> dict[str, Any]:
    """The value in effect of every immutable field (None where its section is not in use)."""
    out: dict[str, Any] = {}
    for path in IMMUTABLE:
        value = _value(config, path)
        if path in _EFFECTIVE:
            value = _EFFECTIVE[path](config, value)
        out[path] = value if value is None or isinstance(value, (str, int, bool)) else str(value)
    return out


def recorded(records: Mapping[str, StageRecord]) -> dict[str, tuple[Any, str]]:
    """Field -> (value, stage) from the newest applied record that holds the field."""
    applied = [r for r in records.values() if r.applied_at is not None and r.status != "destroyed"]
    out: dict[str, tuple[Any, str]] = {}
    for record in sorted(applied, key=lambda r: r.applied_at or r.attempted_at):
        for path, value in record.immutable.items():
            out[path] = (value, record.stage)  # later records overwrite earlier ones
    return out


def check_unchanged(
    config: NebariConfig,
    records: Mapping[str, StageRecord],
    allowed: Iterable[str],
    config_name: str,
) -> list[str]:
    """Refuse a change of an immutable field; return the changes the flags allowed (for notes)."""
    allow = set(allowed)
    unknown = sorted(allow - set(IMMUTABLE))
    if unknown:
        raise ImmutableFieldError(
            f"--allow-change {unknown[0]}: not a field that needs it; those are {', '.join(IMMUTABLE)}"
        )
    now = immutable_values(config)
    accepted: list[str] = []
    for path, (before, stage) in recorded(records).items():
        # None on either side: the field's section was not in use (another provider's), or
        # it means "the default"; only two real values can disagree.
        if path not in now or now[path] == before or before is None or now[path] is None:
            continue
        change = f"{path}: {before!r} -> {now[path]!r}"
        if path in allow:
            accepted.append(change)
            continue
        raise ImmutableFieldError(
            f"{config_name}: {path}: changed from {before!r} (applied by stage {stage}) to "
            f"{now[path]!r}; refused because {IMMUTABLE[path]}. Put it back, or deploy with "
            f"`doit deploy --allow-change {path}` if you mean it"
        )
    return accepted
