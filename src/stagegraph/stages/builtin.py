"""The built-in stages, in Nebari's numbering. Registered through the plugin hook."""

from __future__ import annotations

from stagegraph.stage import Stage
from stagegraph.stages import (
    healthchecks,
    infrastructure,
    ingress,
    keycloak,
    keycloak_configuration,
    kuberhealthy,
    kubernetes_initialize,
    services,
    terraform_state,
    tf_extensions,
)

BUILTIN_STAGES: tuple[Stage, ...] = (
    terraform_state.STAGE,
    infrastructure.STAGE,
    kubernetes_initialize.STAGE,
    ingress.STAGE,
    keycloak.STAGE,
    keycloak_configuration.STAGE,
    services.STAGE,
    tf_extensions.STAGE,
    kuberhealthy.STAGE,
    healthchecks.STAGE,
)
