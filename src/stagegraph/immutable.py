"""Fields whose change would replace the cluster or lose data, checked before any apply.

Each applied stage records the values of these fields it was applied with (its record's
`immutable`). Before a deploy runs any Terraform, the current config is compared with the
newest applied record holding each field; a difference is refused with one line naming
the field and why it cannot simply change, unless the user passes
`doit deploy --allow-change FIELD` for exactly that field. The next successful apply
records the new value, so the flag is needed once.

The table is the single place to add a field (dotted path -> why it is immutable);
`DERIVED` holds choices the config makes without a field of their own (Keycloak's
database follows from its overrides; conda-store's is PostgreSQL). Kube
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


def _keycloak_database(config: NebariConfig) -> str:
    from stagegraph.stages.keycloak import database_vendor

    return database_vendor(dict(config.security.keycloak.overrides))


def _keycloak_database_before(config: NebariConfig) -> str:
    # Releases before this value was recorded ran dev-file unless the overrides said otherwise.
    from stagegraph.stages.keycloak import DEV_FILE, EXTERNAL, database_vendor

    overrides = dict(config.security.keycloak.overrides)
    database = overrides.get("database")
    named = database.get("vendor") if isinstance(database, dict) else None
    where = database_vendor(overrides)  # a server of the user's was theirs then too
    return where if named or where.startswith(EXTERNAL) else DEV_FILE


#: Choices that follow from the config without a field of their own, compared like the
#: fields above (the name is what `--allow-change` takes): why, and how to read it.
DERIVED: dict[str, tuple[str, Callable[[NebariConfig], Any]]] = {
    "security.keycloak.database": (
        "Keycloak's users live in its database and PostgreSQL starts empty (stage 06 re-creates "
        "the realm's clients, groups and roles from the config, not the users); keep it with "
        "security.keycloak.overrides: {database: {vendor: dev-file}}, or export the users first "
        "(`doit backup --now`, then wait for its Job; password hashes are not exported) and after "
        "the switch re-create them with `doit backup --restore <that Job's name>` (each user then "
        "sets a new password; logins through an identity provider carry over)",
        _keycloak_database,
    ),
    "conda_store.database": (
        "conda-store's builds, namespaces and role bindings are in its SQLite file, whose volume "
        "the switch deletes, and PostgreSQL starts empty; the built environments stay on the shared "
        "volume and `environments` are rebuilt, but environments made in conda-store's UI must be "
        "made again",
        lambda _config: "postgresql",
    ),
}

#: Derived values newer than some records: (stage, what an applied record of that stage
#: written before the value was recorded held). Without this an old deployment would
#: compare against nothing and switch silently.
BEFORE_RECORDED: dict[str, tuple[str, Callable[[NebariConfig], Any]]] = {
    "security.keycloak.database": ("05-kubernetes-keycloak", _keycloak_database_before),
    # Every release before ran conda-store standalone on SQLite.
    "conda_store.database": ("07-kubernetes-services", lambda _config: "sqlite"),
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
    for path, (_, read) in DERIVED.items():
        out[path] = read(config)
    return out


def recorded(
    records: Mapping[str, StageRecord], config: NebariConfig | None = None
) -> dict[str, tuple[Any, str]]:
    """Field -> (value, stage) from the newest applied record that holds the field.

    With `config`, a record of a BEFORE_RECORDED stage that lacks the value holds what
    that stage ran before the value was recorded.
    """
    applied = [r for r in records.values() if r.applied_at is not None and r.status != "destroyed"]
    out: dict[str, tuple[Any, str]] = {}
    for record in sorted(applied, key=lambda r: r.applied_at or r.attempted_at):
        held = dict(record.immutable)
        for path, (stage, before) in BEFORE_RECORDED.items():
            if config is not None and record.stage == stage and path not in held:
                held[path] = before(config)
        for path, value in held.items():
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
    reasons = {**IMMUTABLE, **{path: why for path, (why, _) in DERIVED.items()}}
    unknown = sorted(allow - set(reasons))
    if unknown:
        raise ImmutableFieldError(
            f"--allow-change {unknown[0]}: not a field that needs it; those are {', '.join(reasons)}"
        )
    now = immutable_values(config)
    accepted: list[str] = []
    for path, (before, stage) in recorded(records, config).items():
        # None on either side: the field's section was not in use (another provider's), or
        # it means "the default"; only two real values can disagree.
        if path not in now or now[path] == before or before is None or now[path] is None:
            continue
        change = f"{path}: {before!r} -> {now[path]!r}"
        if path in allow:
            accepted.append(change)
            continue
        # A derived value has no field to put back: its reason says what the user can do.
        back = "Deploy" if path in DERIVED else "Put it back, or deploy"
        raise ImmutableFieldError(
            f"{config_name}: {path}: changed from {before!r} (applied by stage {stage}) to "
            f"{now[path]!r}; refused because {reasons[path]}. {back} with "
            f"`doit deploy --allow-change {path}` if you mean it"
        )
    return accepted
