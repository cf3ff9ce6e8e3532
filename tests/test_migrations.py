"""The generic phased-migration mechanism, as a plugin or another service would use it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from stagegraph.migrations import phase_notes, placements
from stagegraph.schema.migration import MajorMigration


class GrafanaSettings(BaseModel):
    """A plugin's settings model carrying a migration of its own service."""

    model_config = ConfigDict(extra="forbid")
    next_major: MajorMigration = MajorMigration()


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("none", [("grafana", "/", "current")]),
        ("beside", [("grafana", "/", "current"), ("grafana-g12", "/g12", "next")]),
        ("switched", [("grafana-g12", "/", "next"), ("grafana", "/g11", "current")]),
        ("retired", [("grafana-g12", "/", "next")]),
    ],
)
def test_placements_per_phase(phase: str, expected: list[tuple[str, str, str]]) -> None:
    settings = GrafanaSettings.model_validate(
        {"next_major": {"phase": phase, "next_route": "/g12", "previous_route": "/g11"}}
    )
    got = placements("grafana", "grafana", "grafana_next", settings.next_major)
    assert [(p.release, p.route, p.role) for p in got] == expected
    assert {p.chart_pin for p in got if p.role == "next"} <= {"grafana_next"}
    assert got[0].at_root  # the first placement always serves /


def test_paths_follow_the_route() -> None:
    (current, upcoming) = placements("hub", "hub", "hub_next", MajorMigration(phase="beside"))
    assert current.path("/hub/login") == "/hub/login"
    assert upcoming.path("/hub/login") == "/n3/hub/login" and upcoming.prefix == "hub-n3"


def test_notes_warn_about_shared_storage_and_name_the_routes() -> None:
    assert phase_notes("Grafana", MajorMigration()) == []
    beside = " ".join(phase_notes("Grafana", MajorMigration(phase="beside")))
    assert "Announce /n3" in beside and "same shared storage" in beside
    switched = " ".join(phase_notes("Grafana", MajorMigration(phase="switched")))
    assert "shut down their servers" in switched and "/n2" in switched
    assert "/n2 goes away" in " ".join(phase_notes("Grafana", MajorMigration(phase="retired")))


def test_routes_are_checked() -> None:
    with pytest.raises(ValidationError):
        MajorMigration(next_route="n3")
    with pytest.raises(ValidationError, match="should differ from next_route"):
        MajorMigration(next_route="/x", previous_route="/x")
    with pytest.raises(ValidationError):
        MajorMigration(phase="halfway")  # type: ignore[arg-type]
