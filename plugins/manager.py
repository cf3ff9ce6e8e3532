"""Which stages take part in a deploy: the built-ins plus the plugins the config enables.

(The full pluggy-based plugin system arrives with the plugins issue; until then only the
built-in stages are registered, through this one function, so callers need not change.)
"""

from __future__ import annotations

from collections.abc import Mapping

from stagegraph.stage import Stage


def stages_for(raw_config: Mapping[str, object]) -> list[Stage]:
    """Stages for a config given as raw YAML data (validation happens later, in actions)."""
    from stagegraph.stages.builtin import BUILTIN_STAGES

    return list(BUILTIN_STAGES)
