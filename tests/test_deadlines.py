"""Deadline arithmetic against the official 2025 and 2026 holiday schedules, clock pauses, sweep.

国办发明电〔2024〕12号 (2025): 春节 1/28–2/4 off, 1/26 (Sun) and 2/8 (Sat) worked; 劳动节 5/1–5/5
off, 4/27 (Sun) worked; 国庆中秋 10/1–10/8 off, 9/28 (Sun) and 10/11 (Sat) worked.
国办发明电〔2025〕7号 (2026): 元旦 1/1–1/3 off, 1/4 (Sun) worked; 春节 2/15–2/23 off, 2/14 (Sat)
and 2/28 (Sat) worked; 劳动节 5/1–5/5 off, 5/9 (Sat) worked; 国庆 10/1–10/7 off, 9/20 (Sun) and
10/10 (Sat) worked.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from core import clock
from engine.deadlines import OVERDUE, WARNING, _resume, status_on, sweep
from engine.workdays import DEFAULT as CAL
from storage.db import session_scope
from storage.tables import Case

D = date.fromisoformat


@pytest.mark.parametrize(("start", "days", "due"), [
    ("2025-09-26", 1, "2025-09-28"),   # make-up Sunday counts
    ("2025-09-26", 3, "2025-09-30"),
    ("2025-09-26", 4, "2025-10-09"),   # across 国庆中秋 (10/1–10/8 off)
    ("2025-09-26", 6, "2025-10-11"),   # make-up Saturday counts
    ("2025-01-24", 1, "2025-01-26"),   # 春节 make-up Sunday
    ("2025-01-26", 2, "2025-02-05"),   # 1/27, then 1/28–2/4 off
    ("2025-04-25", 1, "2025-04-27"),
    ("2026-02-13", 1, "2026-02-14"),   # make-up Saturday before 春节
    ("2026-02-13", 2, "2026-02-24"),   # 2/15–2/23 off
    ("2026-02-27", 1, "2026-02-28"),   # make-up Saturday after 春节
    ("2026-09-30", 1, "2026-10-08"),   # 国庆 2026: 10/1–10/7 off
    ("2026-10-09", 1, "2026-10-10"),
    ("2026-01-02", 1, "2026-01-04"),   # 元旦 make-up Sunday
])
def test_add_working_days_follows_the_official_schedule(start: str, days: int, due: str) -> None:
    assert CAL.add(D(start), days) == D(due)


def test_holidays_and_make_up_days() -> None:
    assert not CAL.is_workday(D("2025-10-08")) and CAL.is_workday(D("2025-10-11"))
    assert not CAL.is_workday(D("2026-02-23")) and CAL.is_workday(D("2026-02-28"))
    assert CAL.between(D("2026-09-30"), D("2026-10-12")) == 4  # 10/8, 10/9, 10/10, 10/12


def test_resuming_after_a_supplement_pause_over_national_day_moves_both_deadlines() -> None:
    case = {"clock_paused_at": datetime(2026, 9, 30, 2, 0, tzinfo=UTC), "paused_days": 1,
            "accepted_at": datetime(2026, 9, 21, 2, 0, tzinfo=UTC),
            "promised_due": D("2026-10-09"), "legal_due": D("2026-10-20")}
    out = _resume(CAL, case, datetime(2026, 10, 12, 3, 0, tzinfo=UTC))  # type: ignore[arg-type]
    assert out["paused_days"] == 5 and out["clock_paused_at"] is None
    before_acceptance = _resume(CAL, {**case, "accepted_at": None}, datetime(2026, 10, 12, 3, 0, tzinfo=UTC))  # type: ignore[arg-type]
    assert before_acceptance == {"clock_paused_at": None}  # 补正 before 受理 extends no period
    assert out["promised_due"] == D("2026-10-14")  # 10/10 (make-up), 10/12, 10/13, 10/14
    assert out["legal_due"] == D("2026-10-26")


def test_status_marks() -> None:
    assert status_on(CAL, D("2026-10-14"), D("2026-10-15"), 3) == OVERDUE
    assert status_on(CAL, D("2026-10-14"), D("2026-10-12"), 3) == WARNING  # 10/13, 10/14 left
    assert status_on(CAL, D("2026-10-14"), D("2026-10-09"), 3) == "正常"  # 10/10, 10/12, 10/13, 10/14


def _case(demo: Demo, number: str) -> dict:
    t = Case.__table__
    with demo.engine.connect() as conn:
        return dict(conn.execute(sa.select(t).where(t.c.number == number)).mappings().one())


def test_supplement_after_acceptance_pauses_the_clock_and_moves_the_deadlines(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    demo.fire("陈静", n, "accept")  # 受理: the decision periods start
    before = _case(demo, n)
    assert before["promised_due"] is not None and before["accepted_at"] is not None
    demo.fire("陈静", n, "request_supplement", comment="请补正卫生检测报告")
    paused = _case(demo, n)
    assert paused["clock_paused_at"] is not None and paused["promised_due"] == before["promised_due"]
    # The applicant took two calendar weeks (recorded pause moved back in time).
    since = datetime.now(UTC) - timedelta(days=14)
    t = Case.__table__
    with demo.engine.begin() as conn:
        conn.execute(sa.update(t).where(t.c.number == n).values(clock_paused_at=since))
    demo.fire("陈静", n, "supplement_done")
    after = _case(demo, n)
    days = CAL.between(clock.local_date(since), clock.today())
    assert after["clock_paused_at"] is None and after["paused_days"] == days >= 8
    assert after["promised_due"] == CAL.add(before["promised_due"], days)
    assert after["legal_due"] == CAL.add(before["legal_due"], days)


def test_sweep_marks_warning_and_overdue_and_notifies_supervisors_once(demo: Demo) -> None:
    late = demo.create("陈静", "GGCSWSXK", ALL_GGCS)["number"]
    soon = demo.create("陈静", "GGCSWSXK", ALL_GGCS)["number"]
    today = D("2026-10-12")
    t = Case.__table__
    with demo.engine.begin() as conn:
        accepted = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)
        conn.execute(sa.update(t).where(t.c.number == late).values(promised_due=D("2026-10-09"),
                                                                   accepted_at=accepted))
        conn.execute(sa.update(t).where(t.c.number == soon).values(
            promised_due=D("2026-10-14"), legal_due=D("2026-11-30"), accepted_at=accepted))
    with session_scope(demo.engine) as s:
        first = sweep(s, today)
    with session_scope(demo.engine) as s:
        again = sweep(s, today)
    assert _case(demo, late)["deadline_status"] == OVERDUE
    assert _case(demo, soon)["deadline_status"] == WARNING
    assert first["changed"] >= 2 and again["changed"] == 0
    assert demo.count("notifications", audience="supervisor") == 2
