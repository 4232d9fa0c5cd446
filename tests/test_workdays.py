"""Working days against the official 2025 and 2026 holiday schedules."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from engine.workdays import DEFAULT as CAL


@pytest.mark.parametrize(("day", "work"), [
    (date(2025, 1, 1), False),   # 元旦
    (date(2025, 1, 26), True),   # 春节调休上班 (Sunday)
    (date(2025, 2, 8), True),    # 春节调休上班 (Saturday)
    (date(2025, 10, 8), False),  # 国庆中秋
    (date(2025, 10, 11), True),  # 调休上班 (Saturday)
    (date(2026, 1, 1), False),
    (date(2026, 10, 1), False),
    (date(2026, 11, 30), True),  # an ordinary Monday
    (date(2026, 11, 29), False),  # an ordinary Sunday
])
def test_official_calendar(day: date, work: bool) -> None:
    assert CAL.is_workday(day) is work


def test_add_working_days_skips_the_national_day_week() -> None:
    # 2025-09-30 (Tue) + 1 working day: Oct 1–8 are holidays, Oct 9 (Thu) is the next working day.
    assert CAL.add(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert CAL.between(date(2025, 9, 30), date(2025, 10, 9)) == 1


def test_unknown_year_falls_back_to_weekends_and_configured_holidays(monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    year = 2040
    assert CAL.source(year) == "provisional"
    monkeypatch.setenv("TONGBAN_EXTRA_HOLIDAYS", '["2040-01-02"]')
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            assert not CAL.is_workday(date(2040, 1, 2))  # a configured holiday (Monday)
            assert CAL.is_workday(date(2040, 1, 3))
            assert not CAL.is_workday(date(2040, 1, 7))  # Saturday
        assert "2040" in caplog.text
    finally:
        get_settings.cache_clear()
