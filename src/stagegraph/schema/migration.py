"""A phased major-version migration of a service: the config half (`MajorMigration`).

Any service section (and any plugin's settings model) can hold one of these to run the
next major version of its chart beside the current one, in three deploys (see
`stagegraph.migrations` for what each phase renders and the notes for users).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from stagegraph.schema.base import Section, field_problem

Phase = Literal["none", "beside", "switched", "retired"]
ROUTE_RE = r"^/[a-z0-9][a-z0-9-]{0,30}$"


class MajorMigration(Section):
    """Run a service's next major version beside the current one, then switch, then retire."""

    phase: Phase = Field(
        "none",
        description="none: only the current version, on /. beside: the next version also runs, on "
        "next_route. switched: the next version serves / and the previous one moves to previous_route. "
        "retired: only the next version, on /. Meant to move one phase per deploy (users need each window).",
    )
    next_route: str = Field(
        "/n3",
        pattern=ROUTE_RE,
        description="Path prefix of the next version while it runs beside the current one (phase beside).",
    )
    previous_route: str = Field(
        "/n2",
        pattern=ROUTE_RE,
        description="Path prefix the previous version moves to when the next one takes / (phase switched).",
    )

    @model_validator(mode="after")
    def _distinct(self) -> MajorMigration:
        if self.next_route == self.previous_route:
            raise field_problem("previous_route", "should differ from next_route", self.previous_route)
        return self
