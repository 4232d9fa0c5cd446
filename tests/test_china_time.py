"""A counter's day in China time, with the process's own zone set to UTC: case numbers, the law's
periods from 受理, 预警/逾期 turning at Beijing's midnight, dashboard days, the certificate's date
and the verify page — at chosen instants around the 2026 National Day (国庆 10/1–10/7 off, 10/10
worked)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo, run_jobs

from core import clock
from engine import dashboard, deadlines
from engine.workdays import DEFAULT as CAL
from storage.db import session_scope
from storage.tables import T_CASE

BEIJING = ZoneInfo("Asia/Shanghai")
D = date.fromisoformat


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


@pytest.fixture(autouse=True)
def process_in_utc() -> Iterator[None]:
    """The machine says UTC; the product must still count China's days."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    assert time.strftime("%Z") == "UTC"
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.parametrize("at, day", [
    ("2026-09-30 07:00", "2026-09-30"),  # UTC still says 09-29
    ("2026-09-30 23:30", "2026-09-30"),
    ("2026-10-08 07:00", "2026-10-08"),  # UTC says 10-07, a holiday
    ("2026-10-08 23:30", "2026-10-08"),
    ("2026-10-09 07:00", "2026-10-09"),
    ("2026-10-09 23:30", "2026-10-09"),
])
def test_numbers_and_periods_are_counted_from_the_beijing_day(demo: Demo, at: str, day: str) -> None:
    with clock.frozen(beijing(at)):
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        assert day.replace("-", "") in case["number"]
        assert case["deadlines"]["supplement_notice"] == CAL.add(D(day), 5).isoformat()
        accepted = demo.fire("陈静", case["number"], "accept", case["version"])
    dl = accepted["deadlines"]
    assert dl["promised"] == CAL.add(D(day), 10).isoformat()
    assert dl["legal"] == CAL.add(D(day), 20).isoformat()
    assert not dl["provisional"]


def test_a_case_taken_in_at_seven_on_the_first_working_day_after_national_day() -> None:
    # The figures the old UTC arithmetic got wrong by one working day: counted from 10-08, not 10-07.
    assert CAL.add(D("2026-10-08"), 10) == D("2026-10-21")  # 10/9, 10/10 (worked Saturday), 10/12 …
    assert CAL.add(D("2026-10-07"), 10) == D("2026-10-20")


def test_overdue_begins_at_beijing_midnight_not_utc_midnight(demo: Demo) -> None:
    with clock.frozen(beijing("2026-10-09 09:00")):
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        out = demo.fire("陈静", case["number"], "accept", case["version"])
    due = D(out["deadlines"]["promised"])

    def status_at(text: str) -> str:
        with clock.frozen(beijing(text)), session_scope(demo.engine) as s:
            deadlines.sweep(s)
        with demo.engine.connect() as conn:
            return conn.execute(sa.select(T_CASE.c.deadline_status)
                                .where(T_CASE.c.number == case["number"])).scalar_one()

    assert status_at(f"{due} 23:30") == deadlines.WARNING  # 15:30 UTC: still the due day in Beijing
    assert status_at(f"{due + timedelta(days=1)} 00:30") == deadlines.OVERDUE  # UTC still says the due day


def test_dashboard_days_are_beijing_days(demo: Demo) -> None:
    with clock.frozen(beijing("2026-10-08 07:00")):
        demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    with clock.frozen(beijing("2026-10-08 12:00")), session_scope(demo.engine) as s:
        data = dashboard.dashboard(s, demo.actor("赵督查"), days=3)
    assert data["today"] == "2026-10-08"
    received = {d["day"]: d["received"] for d in data["throughput"]}
    assert received == {"2026-10-06": 0, "2026-10-07": 0, "2026-10-08": 1}


def test_the_certificate_is_dated_and_verified_in_beijing_time(demo: Demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.settings import get_settings
    from storage.object_factory import get_store

    get_settings().object_dir = tmp_path / "objects"
    get_store.cache_clear()
    with clock.frozen(beijing("2026-10-09 07:30")):  # 2026-10-08 23:30 UTC
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        n = case["number"]
        v = demo.fire("陈静", n, "accept", case["version"])["version"]
        run_jobs(demo.engine)  # notify; auto review sends this company case to a person or approves it
        state = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("陈静")).json()
        v = state["version"]
        if state["state"]["id"] == "accepted":
            v = demo.fire("陈静", n, "start_review", v)["version"]
        if state["state"]["id"] in ("accepted", "review"):
            v = demo.fire("陈静", n, "approve", v)["version"]
        run_jobs(demo.engine)
        certs = demo.client.get(f"/api/v1/cases/{n}/certificates", headers=demo.h("陈静")).json()["items"]
        page = demo.client.get(f"/verify/{certs[0]['number']}")
    assert page.status_code == 200
    assert "2026-10-09" in page.text and "2026-10-08" not in page.text
    assert "07:30（北京时间）" in page.text
