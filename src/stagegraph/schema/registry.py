"""The external container registry (AWS ECR) that user images may be pulled from."""

from __future__ import annotations

from pydantic import Field, model_validator

from stagegraph.schema.base import Section, field_problem
from stagegraph.schema.secret import SecretValue


class ExternalContainerRegistry(Section):
    """Pull credentials for an external AWS ECR registry, refreshed inside the cluster."""

    enabled: bool = Field(False, description="Whether to configure pulls from the external registry.")
    access_key_id: str | None = Field(
        None, description="AWS access key id allowed to pull from the registry."
    )
    secret_access_key: SecretValue | None = Field(
        None, description="AWS secret access key of that id (a secret: plaintext or a SOPS reference)."
    )
    extcr_account: str | None = Field(None, description="AWS account id that owns the registry.")
    extcr_region: str | None = Field(None, description="AWS region of the registry.")

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> ExternalContainerRegistry:
        if self.enabled:
            for name in ("access_key_id", "secret_access_key", "extcr_account", "extcr_region"):
                value = getattr(self, name)
                if value is None or (isinstance(value, str) and not value.strip()):
                    raise field_problem(name, "required when enabled is true", value)
        return self
