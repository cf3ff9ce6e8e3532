"""Commands around the config and the pins: init, schema, bump, verify_pins, bench."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stagegraph import actions
from stagegraph.commands import TaskDict
from stagegraph.tasks import failing_cleanly

if TYPE_CHECKING:
    from stagegraph.tasks import Session

INIT_PARAMS: list[dict[str, Any]] = [
    {
        "name": "provider",
        "long": "provider",
        "default": "sandbox",
        "help": "sandbox, local, existing, aws, gcp or azure",
    },
    {"name": "project_name", "long": "project-name", "default": "demo", "help": "project name"},
    {"name": "domain", "long": "domain", "default": "demo.example.com", "help": "domain of the platform"},
    {"name": "auth", "long": "auth", "default": "password", "help": "password, GitHub, Auth0 or custom"},
    {"name": "gcp_project", "long": "gcp-project", "default": "", "help": "GCP project id (provider gcp)"},
]


def init(s: Session) -> TaskDict:
    """Write a new, fully commented config (refuses to overwrite an existing file)."""
    return {
        "basename": "init",
        "actions": [(failing_cleanly(actions.do_init), [s])],
        "params": INIT_PARAMS,
        "verbosity": 2,
    }


def schema(s: Session) -> TaskDict:
    """Regenerate schema/nebari-config.schema.json from the config models."""
    return {"basename": "schema", "actions": [(failing_cleanly(actions.do_schema), [s])], "verbosity": 2}


def provider_schemas(s: Session) -> TaskDict:
    """Store the schema of every pinned provider next to the lockfile (maintainers; npm/git)."""
    from stagegraph.tfschema.tasks import PROVIDER_SCHEMAS_PARAMS

    return {
        "basename": "provider_schemas",
        "actions": [(failing_cleanly(actions.do_provider_schemas), [s])],
        "params": PROVIDER_SCHEMAS_PARAMS,
        "verbosity": 2,
    }


def cloud_catalog(s: Session) -> TaskDict:
    """Refresh the AWS regions and instance types validate checks against (maintainers; offline)."""
    return {
        "basename": "cloud_catalog",
        "actions": [(failing_cleanly(actions.do_cloud_catalog), [s])],
        "verbosity": 2,
    }


def bump(s: Session) -> TaskDict:
    """Propose (and with --apply write) this quarter's pin bumps; see docs/pins.md."""
    from stagegraph.pins.tasks import BUMP_PARAMS

    return {
        "basename": "bump",
        "actions": [(failing_cleanly(actions.do_bump), [s])],
        "params": BUMP_PARAMS,
        "verbosity": 2,
    }


def verify_pins(s: Session) -> TaskDict:
    """Check that every pinned chart, image and provider version still exists upstream."""
    from stagegraph.pins.tasks import VERIFY_PARAMS

    return {
        "basename": "verify_pins",
        "actions": [(failing_cleanly(actions.do_verify_pins), [s])],
        "params": VERIFY_PARAMS,
        "verbosity": 2,
    }


def bench(s: Session) -> TaskDict:
    """Print benchmark medians: list, validate, render, deploys, 10/100/500-stage graphs."""
    return {
        "basename": "bench",
        "actions": [(actions.do_bench, [s])],
        "params": [
            {
                "name": "quick",
                "long": "quick",
                "type": bool,
                "default": False,
                "help": "fewer runs, no 500-stage graph",
            }
        ],
        "verbosity": 2,
    }
