"""Working days (工作日) under the State Council's holiday schedule.

``chinese-calendar`` carries holidays and make-up working days (调休) per year. For a year it
does not know we fall back to weekends plus ``TONGBAN_EXTRA_HOLIDAYS`` and log a warning once
per year, because a deadline computed that way may be off by the missing 调休 days.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

from core.settings import get_settings

log = logging.getLogger(__name__)


@lru_cache(maxsize=64)
def _warn_unknown_year(year: int) -> None:
    log.warning("chinese-calendar 无 %d 年节假日数据: 按周末加配置的节假日计算工作日", year)


@lru_cache(maxsize=8192)
def _official(day: date) -> bool | None:
    """The State Council's schedule for ``day``; None for a year chinese-calendar lacks (cached:
    intake computes two deadlines per case, walking day by day)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


def is_workday(day: date) -> bool:
    official = _official(day)
    if official is not None:
        return official
    _warn_unknown_year(day.year)
    return day.weekday() < 5 and day.isoformat() not in set(get_settings().extra_holidays)


def known_year(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
        return True
    except NotImplementedError:
        return False


def add_working_days(start: date, days: int) -> date:
    """The date ``days`` working days after ``start`` (the start day itself does not count)."""
    day = start
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_workday(day):
            remaining -= 1
    return day


def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]."""
    n, day = 0, start
    while day < end:
        day += timedelta(days=1)
        n += is_workday(day)
    return n
