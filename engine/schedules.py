"""The year's official schedule (节假日安排): read from a YAML file, checked, published like an
item version (immutable, content-hashed), and read back by ``engine.workdays``.

A schedule file::

    year: 2027
    notice: 国务院办公厅关于2027年部分节假日安排的通知（国办发明电〔2026〕号）
    holidays: [2027-01-01, 2027-02-06, …]     # days off, weekends inside a break included
    workdays: [2027-02-07, …]                 # make-up working days (调休): weekends that are worked

A published year overrides ``chinese-calendar`` for that year, in every process at its next
deadline computation (no restart). Republishing the same content is a no-op; changed content
for a published year is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel import Session

from core import clock
from engine.errors import Conflict
from engine.statements import SELECT_SCHEDULES
from states.problems import Problem
from states.yamlpos import Located, load_mapping
from storage.calendar_tables import CalendarSchedule

MAX_FILE_BYTES = 64_000


class ScheduleError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(p.format() for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Schedule:
    year: int
    notice: str
    holidays: frozenset[date]
    workdays: frozenset[date]
    content_hash: str = ""
    source: str = ""

    def is_workday(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return day in self.workdays or day.weekday() < 5


def parse(source: str, path: str = "<text>") -> Schedule:
    """Check a schedule file; every problem is reported at its line, nothing is stored."""
    located = load_mapping(source, path, max_bytes=MAX_FILE_BYTES, top="year、notice、holidays、workdays",
                           error=ScheduleError)
    problems: list[Problem] = []

    def report(where: tuple[str | int, ...], message: str) -> None:
        pos = located.at(where)
        problems.append(Problem(path, pos.line, pos.col, message))

    doc = located.data
    for key in doc:
        if key not in ("year", "notice", "holidays", "workdays"):
            report((key,), f"未知字段 '{key}'")
    year = doc.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
        report(("year",), "year 须为 2000–2100 之间的年份")
        year = None
    notice = doc.get("notice")
    if not isinstance(notice, str) or not notice.strip():
        report(("notice",), "notice 须为国务院办公厅通知的名称和文号")
    holidays = _dates(doc, "holidays", year, located, report)
    workdays = _dates(doc, "workdays", year, located, report)
    for i, d in enumerate(workdays):
        if d is not None and d.weekday() < 5:
            report(("workdays", i), f"{d} 是周{'一二三四五'[d.weekday()]}, 调休上班日只能是周末")
    both = {d for d in holidays if d is not None} & {d for d in workdays if d is not None}
    for i, d in enumerate(workdays):
        if d in both:
            report(("workdays", i), f"{d} 同时列在 holidays 和 workdays 中")
    if problems:
        raise ScheduleError(sorted(problems, key=lambda p: (p.line, p.col)))
    assert isinstance(year, int) and isinstance(notice, str)
    return Schedule(year, notice.strip(), frozenset(d for d in holidays if d), frozenset(d for d in workdays if d),
                    hashlib.sha256(source.encode("utf-8")).hexdigest(), source)


def _dates(doc: dict[str, Any], key: str, year: int | None, located: Located, report: Any) -> list[date | None]:
    raw = doc.get(key)
    if raw is None:
        report((key,), f"缺少 {key} (可为空列表 [])")
        return []
    if not isinstance(raw, list):
        report((key,), f"{key} 须为日期列表")
        return []
    out: list[date | None] = []
    seen: set[date] = set()
    for i, v in enumerate(raw):
        d = v if type(v) is date else None  # a YAML timestamp (a datetime) is not a day
        if d is None and isinstance(v, str):
            try:
                d = date.fromisoformat(v)
            except ValueError:
                d = None
        if d is None:
            report((key, i), f"不是日期 (YYYY-MM-DD): {v!r}")
        elif year is not None and d.year != year:
            report((key, i), f"{d} 不在 {year} 年内")
            d = None
        elif d in seen:
            report((key, i), f"{d} 重复列出")
        if d is not None:
            seen.add(d)
        out.append(d)
    return out


def read_file(path: Path) -> Schedule:
    try:
        return parse(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as exc:
        raise ScheduleError([Problem(str(path), 1, 1, f"不是 UTF-8 文本: {exc.reason}")]) from None
    except OSError as exc:
        raise ScheduleError([Problem(str(path), 1, 1, f"无法读取: {exc.strerror}")]) from None


def publish(session: Session, schedule: Schedule, by: str) -> bool:
    """Store a year's schedule; True when it is new. Changed content for a published year is refused."""
    row = session.get(CalendarSchedule, schedule.year)
    if row is not None:
        if row.content_hash != schedule.content_hash:
            raise Conflict(f"{schedule.year} 年的节假日安排已发布且内容不同; 已发布的安排不可修改",
                           field="year")
        return False
    session.add(CalendarSchedule(
        year=schedule.year, notice=schedule.notice, holidays=sorted(d.isoformat() for d in schedule.holidays),
        workdays=sorted(d.isoformat() for d in schedule.workdays), content_hash=schedule.content_hash,
        source=schedule.source, published_at=clock.now(), published_by=by))
    session.flush()
    return True


def published(session: Session) -> dict[int, str]:
    """Year → content hash of every published schedule (one small prepared query)."""
    return {r["year"]: r["content_hash"] for r in SELECT_SCHEDULES.all(session)}


def load(session: Session, year: int) -> Schedule | None:
    row = session.get(CalendarSchedule, year)
    if row is None:
        return None
    return Schedule(row.year, row.notice, frozenset(map(date.fromisoformat, row.holidays)),
                    frozenset(map(date.fromisoformat, row.workdays)), row.content_hash, row.source)
