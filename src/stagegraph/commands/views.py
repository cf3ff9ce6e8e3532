"""Commands that show things: validate, status, why, graph, plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stagegraph import actions
from stagegraph.commands import TaskDict
from stagegraph.tasks import failing_cleanly

if TYPE_CHECKING:
    from stagegraph.tasks import Session


def validate(s: Session) -> TaskDict:
    """Validate the config and the lockfile pins every stage uses (offline)."""
    return {"basename": "validate", "actions": [(failing_cleanly(actions.do_validate), [s])], "verbosity": 2}


def check(s: Session) -> TaskDict:
    """Check the render against the real Kubernetes API, chart and provider schemas (offline)."""
    from stagegraph.checks.options import CHECK_PARAMS

    return {
        "basename": "check",
        "actions": [(failing_cleanly(actions.do_check), [s])],
        "params": CHECK_PARAMS,
        "verbosity": 2,
    }


def status(s: Session) -> TaskDict:
    """Per stage: what the next deploy does (applied, stale, stale via an upstream, ...) and why (--all: every environment)."""
    return {
        "basename": "status",
        "actions": [(failing_cleanly(actions.do_status), [s])],
        "params": [
            {
                "name": "all",
                "long": "all",
                "type": bool,
                "default": False,
                "help": "every environment of the folder side by side (nebari-config.yaml, nebari-config.<env>.yaml)",
            }
        ],
        "verbosity": 2,
    }


def why(s: Session) -> TaskDict:
    """Name exactly which inputs of a stage changed since its last apply: doit why STAGE."""
    return {
        "basename": "why",
        "actions": [(failing_cleanly(actions.do_why), [s])],
        "pos_arg": "stages",
        "verbosity": 2,
    }


def graph(s: Session) -> TaskDict:
    """Each stage's dependencies, config sections and pins (--svg FILE, --dot FILE)."""
    return {
        "basename": "graph",
        "actions": [(failing_cleanly(actions.do_graph), [s])],
        "params": [
            {"name": "svg", "long": "svg", "default": "", "help": "also write the graph as SVG"},
            {"name": "dot", "long": "dot", "default": "", "help": "also write Graphviz DOT"},
        ],
        "verbosity": 2,
    }


def plugins(s: Session) -> TaskDict:
    """List the plugins found: version, whether enabled, and the stages, tasks and settings each brings."""
    return {"basename": "plugins", "actions": [(failing_cleanly(actions.do_plugins), [s])], "verbosity": 2}
