"""The config migrations, one small step per Nebari release that changed something.

Written from what each step of Nebari 2025.10.1's `upgrade.py` changes (26 steps, from
0.3.12 to 2025.10.1). Every step also sets `nebari_version` to its release (done by
`run.upgrade_text`, not here). Differences from Nebari, on purpose:
- no prompts: decisions come from `--decide NAME:VALUE` (see `DECISIONS`);
- no live-cluster calls: those become `DeployAction`s the deploy runs and records;
- no plaintext root password (0.4.0): it is generated encrypted under secrets/;
- no `rm -rf stages`: stagegraph's render deletes files a stage no longer renders.
"""

from __future__ import annotations

from stagegraph.upgrade.model import Decision, StepContext
from stagegraph.upgrade.registry import STEPS, Step, step, steps_between
from stagegraph.upgrade.steps_early import CUSTOM_AUTH, WORKFLOW_CONTROLLER
from stagegraph.upgrade.steps_recent import DEFAULT_NODE_GROUPS, GCP_OLD_NODES, SHARED_DIRECTORY_ROLES, TAINTS

__all__ = ["DECISIONS", "STEPS", "Step", "steps_between"]


def _nothing(ctx: StepContext) -> None:
    """Releases whose config format did not change: only nebari_version moves."""


for _v in ("2024.3.1", "2024.3.2", "2024.3.3", "2024.5.1", "2024.9.1", "2025.3.1", "2025.4.2", "2025.6.1"):
    step(_v, "no config change")(_nothing)


#: Every decision a step can ask for, for `doit upgrade --help` and the README.
DECISIONS: tuple[Decision, ...] = (
    CUSTOM_AUTH,
    WORKFLOW_CONTROLLER,
    DEFAULT_NODE_GROUPS,
    GCP_OLD_NODES,
    SHARED_DIRECTORY_ROLES,
    TAINTS,
)
