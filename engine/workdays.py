"""Working days (工作日) under the State Council's holiday schedule.

Three sources, in this order, per year:
1. the schedule an administrator published (``tongban calendar import``, ``engine.schedules``);
2. ``chinese-calendar`` (its newest release stops at 2026);
3. weekends plus ``TONGBAN_EXTRA_HOLIDAYS``: *provisional*, since the year's make-up working days
   (调休) are unknown. A due date computed this way is marked provisional on the case and
   recomputed when the year's schedule is published.

``calendar(session)`` gives the calendar as the database holds it now: one small query, so a
schedule published by any process counts at every other process's next deadline computation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

import chinese_calendar
from sqlmodel import Session

from core.settings import get_settings
from engine import schedules
from engine.schedules import Schedule
from storage.db import database_key

log = logging.getLogger(__name__)

Source = Literal["published", "chinese_calendar", "provisional"]


@lru_cache(maxsize=8192)
def _chinese_calendar(day: date) -> bool | None:
    """chinese-calendar's answer for ``day``; None for a year it lacks (cached: deadlines walk
    day by day)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return None


@lru_cache(maxsize=64)
def _warn_provisional(year: int) -> None:
    log.warning("%d 年节假日安排未发布且 chinese-calendar 无数据: 按周末加配置的节假日计算 (临时)", year)


@dataclass(frozen=True)
class WorkCalendar:
    published: Mapping[int, Schedule]

    def source(self, year: int) -> Source:
        if year in self.published:
            return "published"
        return "chinese_calendar" if _chinese_calendar(date(year, 6, 1)) is not None else "provisional"

    def is_workday(self, day: date) -> bool:
        schedule = self.published.get(day.year)
        if schedule is not None:
            return schedule.is_workday(day)
        official = _chinese_calendar(day)
        if official is not None:
            return official
        _warn_provisional(day.year)
        return day.weekday() < 5 and day.isoformat() not in set(get_settings().extra_holidays)

    def add(self, start: date, days: int) -> date:
        """The date ``days`` working days after ``start`` (the start day itself does not count)."""
        day, remaining = start, days
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_workday(day):
                remaining -= 1
        return day

    def before(self, day: date, days: int) -> date:
        """The date ``days`` working days before ``day``."""
        remaining = days
        while remaining > 0:
            day -= timedelta(days=1)
            if self.is_workday(day):
                remaining -= 1
        return day

    def between(self, start: date, end: date) -> int:
        """Working days in (start, end]."""
        n, day = 0, start
        while day < end:
            day += timedelta(days=1)
            n += self.is_workday(day)
        return n

    def provisional(self, start: date, end: date) -> bool:
        """Whether a period from ``start`` to ``end`` touches a year with no official schedule."""
        return any(self.source(y) == "provisional" for y in range(start.year, end.year + 1))

    def missing_years(self, today: date, horizon_days: int = 60) -> list[int]:
        """Years that start within ``horizon_days`` (or have started) with no official schedule."""
        last = (today + timedelta(days=horizon_days)).year
        return [y for y in range(today.year, last + 1) if self.source(y) == "provisional"]


_calendars: dict[str, tuple[dict[int, str], WorkCalendar]] = {}


def calendar(session: Session) -> WorkCalendar:
    """The working-day calendar of this database as published right now."""
    key = database_key(session)
    hashes = schedules.published(session)
    hit = _calendars.get(key)
    if hit is not None and hit[0] == hashes:
        return hit[1]
    old = hit[1].published if hit else {}
    loaded = {y: old[y] if y in old and old[y].content_hash == h else schedules.load(session, y)
              for y, h in hashes.items()}
    cal = WorkCalendar({y: s for y, s in loaded.items() if s is not None})
    _calendars[key] = (hashes, cal)
    return cal


# Without a database: chinese-calendar, then weekends (tests of the arithmetic, the benchmark).
DEFAULT = WorkCalendar({})
