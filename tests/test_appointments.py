"""分时服务: slots from the calendar in Beijing time, booking by code, cancel and reschedule,
the last place under concurrent bookings, no-shows (on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import Demo

from core import clock
from core.settings import get_settings
from engine import appointments
from engine.errors import Conflict
from storage.db import session_scope

BEIJING = ZoneInfo("Asia/Shanghai")
MONDAY = "2026-12-07"
URL = "/api/v1/appointments"


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


@pytest.fixture(autouse=True)
def _generous_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "progress_rate_per_minute", 1000)


def booking(start: str = "09:30", day: str = MONDAY, phone: str = "13800000001", **over: Any) -> dict[str, Any]:
    return {"counter": "pd-zhengwu", "item": "GGCSWSXK", "date": day, "start": start, "name": "张三",
            "phone": phone} | over


def slots(demo: Demo, day: str = MONDAY, counter: str = "pd-zhengwu", item: str = "GGCSWSXK") -> Any:
    return demo.client.get(f"{URL}/slots", params={"counter": counter, "item": item, "date": day})


def test_slots_are_cut_from_the_hours_on_working_days_in_beijing_time(demo: Demo) -> None:
    # 08:00 in Beijing is 00:00 UTC: "today" is the Beijing day, whatever the process's zone.
    with clock.frozen(beijing(f"{MONDAY} 08:00")):
        r = slots(demo)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [s["start"] for s in items][:3] == ["09:00", "09:30", "10:00"] and items[-1]["end"] == "17:00"
        assert len(items) == 6 + 7 and "12:00" not in [s["start"] for s in items]  # the lunch break
        assert all(s["open"] and s["left"] == s["capacity"] == 2 for s in items)
        saturday = slots(demo, "2026-12-12")
        assert saturday.status_code == 422 and saturday.json()["errors"][0]["field"] == "date"
        assert "不是工作日" in saturday.json()["errors"][0]["reason"]
        past = slots(demo, "2026-12-04")
        assert past.status_code == 422 and past.json()["errors"][0]["field"] == "date"
    with clock.frozen(beijing(f"{MONDAY} 09:40")):
        items = slots(demo).json()["items"]
        assert [s["open"] for s in items][:3] == [False, False, True]  # begun slots cannot be booked
    with clock.frozen(beijing("2026-09-28 08:00")):
        holiday = slots(demo, "2026-10-01")  # 国庆节
        assert holiday.status_code == 422 and "不是工作日" in holiday.json()["detail"]
    # A counter that does not take the item in: refused, naming the item.
    with clock.frozen(beijing(f"{MONDAY} 08:00")):
        r = slots(demo, counter="ns-yunzhidao", item="CBWLSXK")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "item"


def test_booking_lookup_cancel_and_reschedule_by_code(demo: Demo) -> None:
    with clock.frozen(beijing(f"{MONDAY} 08:00")):
        r = demo.client.post(URL, json=booking())
        assert r.status_code == 201, r.text
        made = r.json()
        code = made["code"]
        assert r.headers["Location"] == f"{URL}/{code}" and len(code) == 10
        assert made["status"] == "booked" and made["counter_name"] == "浦东新区企业服务中心综合窗口"
        assert made["starts_at"] == f"{MONDAY}T09:30:00+08:00" and made["end"] == "10:00"
        assert demo.client.get(f"{URL}/{code.lower()}").json()["status_label"] == "已预约"
        assert next(s for s in slots(demo).json()["items"] if s["start"] == "09:30")["left"] == 1
        # The same phone cannot hold two places for the item on one day.
        again = demo.client.post(URL, json=booking("10:00"))
        assert again.status_code == 409 and again.json()["type"] == "/problems/conflict"
        moved = demo.client.post(f"{URL}/{code}/reschedule", json={"date": MONDAY, "start": "14:00"})
        assert moved.status_code == 200 and moved.json()["start"] == "14:00" and moved.json()["code"] == code
        left = {s["start"]: s["left"] for s in slots(demo).json()["items"]}
        assert left["09:30"] == 2 and left["14:00"] == 1
        cancelled = demo.client.post(f"{URL}/{code}/cancellation")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert {s["start"]: s["left"] for s in slots(demo).json()["items"]}["14:00"] == 2
        assert demo.client.post(f"{URL}/{code}/cancellation").status_code == 409
        assert demo.client.get(f"{URL}/ZZZZZZZZZZ").status_code == 404
    with clock.frozen(beijing(f"{MONDAY} 08:00")):
        kept = demo.client.post(URL, json=booking("09:00", phone="13800000002")).json()["code"]
    with clock.frozen(beijing(f"{MONDAY} 09:05")):  # the slot has begun: no more changes
        assert demo.client.post(f"{URL}/{kept}/cancellation").status_code == 409


def test_bad_bookings_are_refused_by_field_and_write_nothing(demo: Demo) -> None:
    with clock.frozen(beijing(f"{MONDAY} 08:00")):
        for body, field in ((booking(phone="12345"), "phone"), (booking(start="9:30"), "start"),
                            (booking(start="12:00"), "start"), (booking(day="2026-12-13"), "date"),
                            (booking(item="NOSUCH"), "item"), (booking(name="   "), "name")):
            r = demo.client.post(URL, json=body)
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (body, r.text)
    assert demo.count("appointments") == 0 and demo.count("appointment_slots") == 0


def test_the_last_place_goes_to_exactly_one_of_twenty_concurrent_bookings(demo: Demo) -> None:
    with clock.frozen(beijing(f"{MONDAY} 08:00")):
        first = demo.client.post(URL, json=booking("10:30", phone="13900000000"))
        assert first.status_code == 201
        barrier = threading.Barrier(20)
        won: list[str] = []
        full: list[str] = []
        errors: list[BaseException] = []

        def book(i: int) -> None:
            try:
                barrier.wait()
                with session_scope(demo.engine) as s:
                    won.append(appointments.book(s, "pd-zhengwu", "GGCSWSXK", date.fromisoformat(MONDAY), "10:30",
                                                 f"申请人{i}", f"139000000{i + 10:02d}")["code"])
            except Conflict as exc:
                full.append(exc.detail)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=book, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [] and len(won) == 1 and len(full) == 19, (errors, won, full[:2])
        assert all("约满" in f for f in full)
        assert demo.count("appointments") == 2
        assert next(s for s in slots(demo).json()["items"] if s["start"] == "10:30")["left"] == 0


def test_no_shows_are_marked_and_the_third_one_stops_booking(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "appointment_no_show_limit", 2)
    phone = "13700000000"
    for day in ("2026-12-07", "2026-12-08"):
        with clock.frozen(beijing(f"{day} 08:00")):
            assert demo.client.post(URL, json=booking(day=day, phone=phone)).status_code == 201
        with clock.frozen(beijing(f"{day} 09:44")), session_scope(demo.engine) as s:
            assert appointments.mark_no_shows(s) == 0  # within the 15 minutes' grace
        with clock.frozen(beijing(f"{day} 09:46")), session_scope(demo.engine) as s:
            assert appointments.mark_no_shows(s) == 1
    with clock.frozen(beijing("2026-12-09 08:00")):
        r = demo.client.post(URL, json=booking(day="2026-12-09", phone=phone))
        assert r.status_code == 403 and "预约未到" in r.json()["detail"] and "2027-03-07" in r.json()["detail"]
        assert demo.client.post(URL, json=booking(day="2026-12-09", phone="13700000001")).status_code == 201
