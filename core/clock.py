"""The product's clock and its one zone.

Instants are UTC (stored and answered with their offset); every calendar date a person reads —
case numbers, due dates, "today" for 预警/逾期, dashboard days, document dates — is taken in the
configured zone (``TONGBAN_TIMEZONE``, default Asia/Shanghai), never the operating system's.
A case received at 07:30 Beijing time belongs to that Beijing day, though UTC still says yesterday.

Tests set the clock (``frozen``) instead of sleeping or changing the machine's time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from core.settings import get_settings

_fixed: datetime | None = None


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return _fixed if _fixed is not None else datetime.now(UTC)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone() -> ZoneInfo:
    return _zone(get_settings().timezone)


def zone_label() -> str:
    """How pages name the zone their times are in."""
    name = get_settings().timezone
    return {"Asia/Shanghai": "北京时间", "Asia/Hong_Kong": "香港时间", "Asia/Macau": "澳门时间"}.get(name, name)


def local(at: datetime) -> datetime:
    """``at`` in the product's zone (an aware instant; naive ones are taken as UTC)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone())


def local_date(at: datetime) -> date:
    return local(at).date()


def today() -> date:
    return local_date(now())


def start_of(day: date) -> datetime:
    """The instant ``day`` begins in the product's zone, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=zone()).astimezone(UTC)


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Run with the clock standing at ``at`` (aware); ``advance`` moves it on."""
    global _fixed
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    before, _fixed = _fixed, at.astimezone(UTC)
    try:
        yield
    finally:
        _fixed = before


def advance(delta: timedelta) -> None:
    """Move a frozen clock on (tests only)."""
    global _fixed
    if _fixed is None:
        raise RuntimeError("the clock is not frozen")
    _fixed += delta
