"""Quarterly rotation: the date picks the group, `--group` overrides it."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stagegraph.pins.cadence import ROTATION, SECTIONS, group_for, quarter, resolve_group
from stagegraph.pins.errors import PinsArgumentError


@pytest.mark.parametrize(
    ("day", "group"),
    [
        (date(2025, 1, 1), "python"),
        (date(2025, 3, 31), "python"),
        (date(2025, 4, 1), "kubernetes-helm"),
        (date(2025, 7, 1), "providers"),
        (date(2025, 10, 1), "terraform-images"),
        (date(2026, 1, 1), "python"),
    ],
)
def test_quarter_picks_the_group(day: date, group: str) -> None:
    assert group_for(day).name == group


@given(st.dates())
def test_every_section_is_bumped_once_a_year(day: date) -> None:
    q = quarter(day)
    assert 1 <= q <= 4
    year = [group_for(date(day.year, m, 1)) for m in (1, 4, 7, 10)]
    assert sorted(s for g in year for s in g.sections) == sorted(SECTIONS)
    assert group_for(day) == year[q - 1]


def test_override_by_rotation_name_section_or_all() -> None:
    day = date(2025, 1, 1)
    assert resolve_group(None, day).name == "python"
    assert resolve_group("providers", day).sections == ("providers",)
    assert resolve_group("helm_charts", day).sections == ("helm_charts",)
    assert resolve_group("all", day).sections == SECTIONS
    assert resolve_group("kubernetes-helm", day) == ROTATION[1]


def test_unknown_group_lists_the_choices() -> None:
    with pytest.raises(PinsArgumentError, match=r"--group 'charts': unknown group; choose one of python, "):
        resolve_group("charts", date(2025, 1, 1))
