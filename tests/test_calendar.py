"""The year's official schedule: checked file by line, published once, seen by a running server
without a restart, and provisional due dates recomputed when it arrives."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, ALLIANCE, CATALOG, answers_for, page_login, serving

from api.app import create_app
from core import clock
from core.settings import ROOT
from engine import dashboard, schedules
from engine.demo import seed
from engine.errors import Conflict
from engine.workdays import DEFAULT as CAL
from engine.workdays import WorkCalendar
from storage import migrate
from storage.db import make_engine, session_scope

FIXTURES = ROOT / "tests" / "fixtures" / "calendar"
GOOD, BAD = FIXTURES / "test_2027.yaml", FIXTURES / "bad_2027.yaml"
BEIJING = ZoneInfo("Asia/Shanghai")


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TONGBAN_DATABASE_URL": db_url}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)


def test_a_bad_schedule_is_reported_by_line_and_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = cli(url, "calendar", "import", str(BAD))
    assert done.returncode == 1
    for where, what in [(":5:5:", "2026-12-31 不在 2027 年内"), (":6:5:", "不是日期"), (":7:5:", "重复列出"),
                        (":9:5:", "调休上班日只能是周末"), (":9:5:", "同时列在 holidays 和 workdays 中"),
                        (":11:", "未知字段 'colour'")]:
        assert any(where in line and what in line and str(BAD) in line for line in done.stderr.splitlines()), what
    engine = make_engine(url)
    migrate.upgrade(engine)  # the file was refused before the command touched the database
    with session_scope(engine, readonly=True) as s:
        assert schedules.published(s) == {}


def test_a_published_year_is_immutable(sqlite_db: sa.Engine) -> None:
    schedule = schedules.read_file(GOOD)
    with session_scope(sqlite_db) as s:
        assert schedules.publish(s, schedule, "test") is True
        assert schedules.publish(s, schedule, "test") is False  # the same content again: no change
    changed = schedules.parse(GOOD.read_text(encoding="utf-8").replace("2027-01-09", "2027-01-10"), "x.yaml")
    with session_scope(sqlite_db) as s, pytest.raises(Conflict, match="不可修改"):
        schedules.publish(s, changed, "test")


def test_the_schedule_overrides_the_fallback_for_its_year() -> None:
    schedule = schedules.read_file(GOOD)
    cal = WorkCalendar({2027: schedule})
    assert CAL.source(2027) == "provisional" and cal.source(2027) == "published"
    assert CAL.is_workday(date(2027, 1, 1)) and not cal.is_workday(date(2027, 1, 1))  # Friday off
    assert not CAL.is_workday(date(2027, 1, 9)) and cal.is_workday(date(2027, 1, 9))  # Saturday worked
    assert cal.source(2026) == "chinese_calendar"


def test_importing_the_schedule_fixes_a_provisional_deadline_in_a_running_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        tokens = {t["name"]: t["token"] for t in seed(s, CATALOG, ALLIANCE, tmp_path / "tokens.json", 30)}
    h = {"Authorization": f"Bearer {tokens['陈静']}"}
    accepted = datetime(2026, 12, 21, 10, 0, tzinfo=BEIJING)  # a Monday; 20 working days run into 2027
    with serving(create_app(engine)) as base, clock.frozen(accepted):
        r = httpx.post(f"{base}/api/v1/cases", headers=h,
                       json={"item_code": "GGCSWSXK", "applicant": {"name": "某公司", "kind": "company"},
                             "materials": ALL_GGCS, "situation": answers_for("GGCSWSXK", ALL_GGCS)})
        assert r.status_code == 201, r.text
        n, v = r.json()["number"], r.json()["version"]
        r = httpx.post(f"{base}/api/v1/cases/{n}/triggers/accept", headers={**h, "If-Match": f'"{v}"'})
        before = r.json()["deadlines"]
        assert before["provisional"] is True and before["legal"] == CAL.add(date(2026, 12, 21), 20).isoformat()
        with session_scope(engine, readonly=True) as s:
            assert dashboard.dashboard(s, _supervisor(s))["calendar_missing_years"] == [2027]
        with httpx.Client(base_url=base) as browser:  # the clerk's pages say so too
            assert page_login(browser, tokens["陈静"]).status_code == 303
            assert 'id="provisional"' in browser.get(f"/ui/cases/{n}").text
            assert "临时" in browser.get("/ui/queue").text

        done = cli(url, "calendar", "import", str(GOOD))  # another process publishes the year
        assert done.returncode == 0, done.stderr
        assert "重算临时期限 1 件" in done.stdout

        after = httpx.get(f"{base}/api/v1/cases/{n}", headers=h).json()["deadlines"]
        right = WorkCalendar({2027: schedules.read_file(GOOD)})
        assert after["provisional"] is False
        assert after["legal"] == right.add(date(2026, 12, 21), 20).isoformat() != before["legal"]
        assert after["promised"] == right.add(date(2026, 12, 21), 10).isoformat()
        # A case accepted now uses the published year at once: this process was not restarted.
        r = httpx.post(f"{base}/api/v1/cases", headers=h,
                       json={"item_code": "GGCSWSXK", "applicant": {"name": "某公司", "kind": "company"},
                             "materials": ALL_GGCS, "situation": answers_for("GGCSWSXK", ALL_GGCS)})
        n2, v2 = r.json()["number"], r.json()["version"]
        fresh = httpx.post(f"{base}/api/v1/cases/{n2}/triggers/accept",
                           headers={**h, "If-Match": f'"{v2}"'}).json()["deadlines"]
        assert fresh["legal"] == after["legal"] and fresh["provisional"] is False
        with session_scope(engine, readonly=True) as s:
            assert dashboard.dashboard(s, _supervisor(s))["calendar_missing_years"] == []
    shown = cli(url, "calendar", "show", "2027")
    assert shown.returncode == 0 and "测试用节假日安排" in shown.stdout and "01-09" in shown.stdout


def test_the_dashboard_warns_sixty_days_before_a_year_without_a_schedule(sqlite_db: sa.Engine, tmp_path: Path) -> None:
    with session_scope(sqlite_db) as s:
        seed(s, CATALOG, ALLIANCE, tmp_path / "tokens.json", 30)
    with session_scope(sqlite_db, readonly=True) as s:
        supervisor = _supervisor(s)
        with clock.frozen(datetime(2026, 10, 1, 12, 0, tzinfo=BEIJING)):
            assert dashboard.dashboard(s, supervisor)["calendar_missing_years"] == []
        with clock.frozen(datetime(2026, 11, 3, 12, 0, tzinfo=BEIJING)):
            assert dashboard.dashboard(s, supervisor)["calendar_missing_years"] == [2027]


def _supervisor(session):  # type: ignore[no-untyped-def]
    from engine.actors import Actor
    from storage.tables import Clerk

    c = session.execute(sa.select(Clerk).where(Clerk.name == "赵督查")).scalar_one()
    return Actor(c.id, c.name, None, None, frozenset({"supervisor"}))
