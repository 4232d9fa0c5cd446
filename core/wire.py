"""How answers leave the product: JSON, with every instant in the product's zone.

Instants are stored in UTC; on the wire each one is RFC 3339 with the offset of the zone the
counters work in (``+08:00``), so an answer reads the way its clerk's day runs and every
endpoint writes the same instant the same way (pydantic wrote ``Z``, orjson ``+00:00``).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import orjson

from core import clock


def instant(at: datetime) -> str:
    return clock.local(at).isoformat()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return instant(value)
    if isinstance(value, date | time):  # passed through with datetimes by the option
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(data: Any) -> bytes:
    """orjson, with instants in the product's zone (dates and everything else as orjson does)."""
    return orjson.dumps(data, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
