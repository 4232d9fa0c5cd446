"""The ticket machine's rules from the alliance directory: the hours numbers are given out (on
working days), the daily capacity of a counter and of an item, item groups (the item's group gives
the letter), the waiting times the API answers, and the directory's check of those keys (SQLite
and PG)."""

from __future__ import annotations

import re
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from core import clock
from core.settings import get_settings
from engine import tickets
from engine.directory_manage import DirectoryError, check_text
from engine.errors import Conflict
from storage.db import session_scope
from storage.directory_tables import T_SERVICE

BEIJING = ZoneInfo("Asia/Shanghai")
URL = "/api/v1/tickets"
JN = "jn-kuayu"  # the demo's counter with hours (09:00-12:00, 13:00-17:00), groups A 企业服务 / B 个人事务


@pytest.fixture(autouse=True)
def _generous_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "progress_rate_per_minute", 1000)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def take(demo: Demo, item: str | None = None, **over: str):  # type: ignore[no-untyped-def]
    return demo.client.post(URL, json={"counter": JN, **({"item": item} if item else {}), **over})


def test_numbers_are_given_within_the_counters_and_the_items_hours_on_working_days(demo: Demo) -> None:
    with clock.frozen(at("2026-12-07 08:59")):  # a Monday, before the machine opens
        early = take(demo, "GGCSWSXK")
        assert early.status_code == 409 and early.json()["field"] == "counter"
        assert "09:00-12:00、13:00-17:00" in early.json()["detail"]
    with clock.frozen(at("2026-12-07 09:00")):
        a1 = take(demo, "GGCSWSXK")
        assert a1.status_code == 201, a1.text
        assert a1.json()["number"] == "A001" and a1.json()["group"] == "A"
        b1 = take(demo, "GJJZYJX")  # the directory puts the item in group B
        assert b1.status_code == 201 and b1.json()["number"] == "B001"
    with clock.frozen(at("2026-12-07 11:30")):  # the item's own hours end at 11:30, the counter's at 12:00
        late = take(demo, "GJJZYJX")
        assert late.status_code == 409 and late.json()["field"] == "item" and "09:00-11:30" in late.json()["detail"]
        assert take(demo, "YDJYBA").status_code == 201
    with clock.frozen(at("2026-12-07 12:30")):
        lunch = take(demo, "YDJYBA")
        assert lunch.status_code == 409 and lunch.json()["field"] == "counter"
    with clock.frozen(at("2026-12-05 10:00")):  # a Saturday
        weekend = take(demo, "GGCSWSXK")
        assert weekend.status_code == 409 and "工作日" in weekend.json()["detail"]
        # A counter the directory gives no rules to takes numbers at any time.
        assert demo.client.post(URL, json={"counter": "pd-zhengwu"}).status_code == 201
    assert demo.count("tickets", counter_id=JN) == 3


def test_the_items_group_gives_the_letter_and_a_wrong_group_is_refused(demo: Demo) -> None:
    with clock.frozen(at("2026-12-07 10:00")):
        wrong = take(demo, "YDJYBA", group="A")
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "group"
        assert "B 组" in wrong.json()["errors"][0]["reason"]
        unknown = take(demo, group="C")
        assert unknown.status_code == 422 and "企业服务" in unknown.json()["errors"][0]["reason"]
        assert take(demo, group="B").json()["number"] == "B001"
        assert take(demo, "YLBXZYJX").json()["number"] == "B002"
        assert demo.count("tickets") == 2


def test_daily_capacity_of_the_item_and_of_the_counter(demo: Demo) -> None:
    with clock.frozen(at("2026-12-07 09:30")):
        for _ in range(40):  # YDJYBA: 40 numbers a day
            assert take(demo, "YDJYBA").status_code == 201
        full = take(demo, "YDJYBA")
        assert full.status_code == 409 and full.json()["field"] == "item" and "40" in full.json()["detail"]
        assert take(demo, "YLBXZYJX").status_code == 201  # another item of the group still has numbers
        with demo.engine.begin() as conn:  # the counter's own capacity, lowered to what it gave out
            conn.execute(sa.update(T_SERVICE).where(T_SERVICE.c.counter_id == JN, T_SERVICE.c.item_code == "")
                         .values(capacity=41))
        counter_full = take(demo, "GGCSWSXK")
        assert counter_full.status_code == 409 and counter_full.json()["field"] == "counter"
        assert demo.count("tickets", counter_id=JN) == 41
    with clock.frozen(at("2026-12-08 09:30")):  # a new day, new numbers
        assert take(demo, "YDJYBA").json()["number"] == "B001"


def test_the_ticket_and_the_hall_answer_waiting_times(demo: Demo) -> None:
    with clock.frozen(at("2026-12-07 09:00")):
        first = take(demo, "GGCSWSXK").json()
        second = take(demo, "GGCSWSXK").json()
    with clock.frozen(at("2026-12-07 09:25")):
        shown = demo.client.get(f"{URL}/{second['id']}").json()
        assert shown["ahead"] == 1 and shown["waited_minutes"] == 25
        board = demo.client.get(f"{URL}/hall", params={"counter": JN}).json()
        assert board["waiting"] == 2 and board["longest_wait_minutes"] == 25 and board["mean_wait_minutes"] is None
        demo.client.post(f"{URL}/call-next", headers=demo.h("王芳"))
    with clock.frozen(at("2026-12-07 10:00")):
        called = demo.client.get(f"{URL}/{first['id']}").json()
        assert called["status"] == "called" and called["waited_minutes"] == 25  # until the call
        assert called["expected_minutes"] is None and shown["expected_minutes"] is None  # no pace yet
        board = demo.client.get(f"{URL}/hall", params={"counter": JN}).json()
        assert board["waiting"] == 1 and board["longest_wait_minutes"] == 60 and board["mean_wait_minutes"] == 25.0
        for _ in range(2):
            take(demo, "GGCSWSXK")
    with clock.frozen(at("2026-12-07 10:10")):  # a second call, 45 minutes after the first: the pace
        demo.client.post(f"{URL}/call-next", headers=demo.h("王芳"))
        last = demo.client.get(f"{URL}/{second['id'] + 2}").json()
        assert last["number"] == "A004" and last["ahead"] == 1 and last["expected_minutes"] == 90


DOC = """regions: [{code: "370100", name: 济南}]
counters:
  - id: x
    name: 某窗口
    region: "370100"
    hours: "9:00-12:00"
    capacity: 0
    groups: {A: 企业服务, Z: 其他}
    items: {AAA: [intake], BBB: [competent]}
    service:
      AAA: {group: C, hours: "12:00-11:00"}
      BBB: {capacity: 3}
"""


def test_the_directory_check_names_every_wrong_rule_with_its_line() -> None:
    with pytest.raises(DirectoryError) as err:
        check_text(DOC, "d.yaml")
    shown = [p.format() for p in err.value.problems]
    assert any(s.startswith("d.yaml:6:") and "09:00-12:00" in s for s in shown), shown
    assert any(s.startswith("d.yaml:7:") and "capacity" in s for s in shown), shown
    assert any(s.startswith("d.yaml:8:") and "A 至 E" in s for s in shown), shown
    assert any(s.startswith("d.yaml:11:") and "从早到晚" in s for s in shown), shown
    assert any(s.startswith("d.yaml:11:") and "'C' 未在 groups" in s for s in shown), shown
    assert any(s.startswith("d.yaml:12:") and "BBB 不在本窗口收件" in s for s in shown), shown
    fine = check_text(DOC.replace('"9:00', '"09:00').replace("capacity: 0", "capacity: 50")
                      .replace(", Z: 其他", "").replace("group: C, hours: \"12:00-11:00\"", "group: A")
                      .replace("      BBB: {capacity: 3}\n", ""), "d.yaml")
    counter = fine.document["counters"][0]
    assert counter["hours"] == "09:00-12:00" and counter["capacity"] == 50
    assert counter["service"] == {"AAA": {"group": "A"}}


def test_the_machine_page_offers_groups_then_items_and_the_returning_form(demo: Demo) -> None:
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS)
    with clock.frozen(at("2026-12-07 11:40")):
        first = demo.client.get("/hall/ticket")
        assert 'id="returning-form"' in first.text and first.headers["cache-control"] == "no-store"
        groups = demo.client.get("/hall/ticket", params={"counter": JN}).text
        assert 'id="group-A"' in groups and "个人事务" in groups and 'id="items"' not in groups
        items = demo.client.get("/hall/ticket", params={"counter": JN, "group": "B"}).text
        assert re.search(r'id="item-GJJZYJX" disabled', items) and 'id="item-GGCSWSXK"' not in items
        taken = demo.client.post("/hall/ticket", data={"counter": JN, "group": "B", "item": "YDJYBA"},
                                 follow_redirects=False)
        assert taken.status_code == 303 and taken.headers["location"].startswith("/hall/ticket/")
        assert "B001" in demo.client.get(taken.headers["location"]).text
        closed = demo.client.post("/hall/ticket", data={"counter": JN, "group": "B", "item": "GJJZYJX"})
        assert closed.status_code == 409 and "09:00-11:30" in closed.text and 'id="items"' in closed.text
        wrong = demo.client.post("/hall/ticket/returning", data={"number": case["number"], "code": "WRONG12345"})
        assert wrong.status_code == 404 and 'id="error"' in wrong.text and case["number"] in wrong.text
        back = demo.client.post("/hall/ticket/returning", data={"number": case["number"], "code": case["query_code"]},
                                follow_redirects=False)
        assert back.status_code == 303
        assert "F001" in demo.client.get(back.headers["location"]).text
        assert demo.count("tickets") == 2


def test_the_last_number_of_an_item_goes_to_one_of_many_racing_machines(demo: Demo) -> None:
    with demo.engine.begin() as conn:
        conn.execute(sa.update(T_SERVICE).where(T_SERVICE.c.counter_id == JN, T_SERVICE.c.item_code == "YDJYBA")
                     .values(capacity=3))
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def machine() -> None:
        start.wait()
        try:
            with session_scope(demo.engine) as s:
                outcomes.append(tickets.walk_in(s, JN, None, "YDJYBA")["number"])
        except Conflict as exc:
            outcomes.append(exc.extra.get("field", ""))

    with clock.frozen(at("2026-12-07 10:00")):
        threads = [threading.Thread(target=machine) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(outcomes) == ["B001", "B002", "B003"] + ["item"] * 9, outcomes
    assert demo.count("tickets", item_code="YDJYBA") == 3
