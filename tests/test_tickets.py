"""Tickets at the counter: walk-in numbers per group, a booking checked in ahead of them, 复诊号 to
the companion clerk only, call next (never the same ticket twice), the hall board (SQLite and PG)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import ALL_GGCS, Demo, origin_of, page_login
from fastapi.testclient import TestClient

from core import clock
from core.settings import get_settings

BEIJING = ZoneInfo("Asia/Shanghai")
URL = "/api/v1/tickets"


@pytest.fixture(autouse=True)
def _generous_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "progress_rate_per_minute", 1000)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def test_walk_in_booking_check_in_and_call_next_in_order(demo: Demo) -> None:
    with clock.frozen(at("2026-12-07 08:00")):
        booked = demo.client.post("/api/v1/appointments", json={
            "counter": "pd-zhengwu", "item": "GGCSWSXK", "date": "2026-12-07", "start": "09:30",
            "name": "张三", "phone": "13800000001"}).json()
    with clock.frozen(at("2026-12-07 09:20")):
        a1 = demo.client.post(URL, json={"counter": "pd-zhengwu"}).json()
        a2 = demo.client.post(URL, json={"counter": "pd-zhengwu"}).json()
        b1 = demo.client.post(URL, json={"counter": "pd-zhengwu", "group": "b"}).json()
        assert [a1["number"], a2["number"], b1["number"]] == ["A001", "A002", "B001"]
        assert a2["ahead"] == 1 and a1["status_label"] == "等候中"
        bad = demo.client.post(URL, json={"counter": "pd-zhengwu", "group": "Z"})
        assert bad.status_code == 422
        nowhere = demo.client.post(URL, json={"counter": "nowhere"})
        assert nowhere.status_code == 422 and nowhere.json()["errors"][0]["field"] == "counter"
        # Check-in only at the booked counter, once.
        wrong = demo.client.post(f"{URL}/check-in", json={"code": booked["code"]}, headers=demo.h("李强"))
        assert wrong.status_code == 403
        p1 = demo.client.post(f"{URL}/check-in", json={"code": booked["code"]}, headers=demo.h("陈静"))
        assert p1.status_code == 201, p1.text
        assert p1.json()["number"] == "P001" and p1.json()["kind"] == "appointment"
        again = demo.client.post(f"{URL}/check-in", json={"code": booked["code"]}, headers=demo.h("陈静"))
        assert again.status_code == 409
        assert demo.client.get(f"/api/v1/appointments/{booked['code']}").json()["status"] == "checked_in"
    called = []
    for minute in range(31, 35):
        with clock.frozen(at(f"2026-12-07 09:{minute}")):
            called.append(demo.client.post(f"{URL}/call-next", headers=demo.h("陈静")).json()["ticket"])
    with clock.frozen(at("2026-12-07 09:40")):
        assert [t["number"] for t in called] == ["P001", "A001", "A002", "B001"]  # the booking first
        assert called[0]["window"].startswith("浦东") and called[0]["status"] == "called"
        assert demo.client.post(f"{URL}/call-next", headers=demo.h("陈静")).json()["ticket"] is None
        board = demo.client.get(f"{URL}/hall").json()
        assert board["calls"][0]["number"] == "B001" and board["waiting"] == 0
        assert board["calls"][0]["called_at"].endswith("+08:00")
        done = demo.client.post(f"{URL}/{called[0]['id']}/finish", json={}, headers=demo.h("陈静"))
        assert done.status_code == 200 and done.json()["status"] == "done"
        not_mine = demo.client.post(f"{URL}/{called[1]['id']}/finish", json={}, headers=demo.h("李强"))
        assert not_mine.status_code == 403
        supervisor = demo.client.post(f"{URL}/call-next", headers=demo.h("赵督查"))
        assert supervisor.status_code == 403


def test_returning_applicant_goes_to_the_companion_without_a_new_queue(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    wrong = demo.client.post(f"{URL}/returning", json={"number": case["number"], "query_code": "WRONG12345"})
    assert wrong.status_code == 404
    demo.client.post(URL, json={"counter": "pd-zhengwu"})
    f1 = demo.client.post(f"{URL}/returning", json={"number": case["number"], "query_code": case["query_code"]})
    assert f1.status_code == 201, f1.text
    assert f1.json()["number"] == "F001" and f1.json()["kind_label"] == "复诊号"
    same = demo.client.post(f"{URL}/returning", json={"number": case["number"], "query_code": case["query_code"]})
    assert same.json()["id"] == f1.json()["id"]  # asking again gives the same ticket
    first = demo.client.post(f"{URL}/call-next", headers=demo.h("陈静")).json()["ticket"]
    assert first["number"] == "F001"  # ahead of the walk-in already waiting


def test_hall_display_and_the_call_panel_with_prg(demo: Demo) -> None:
    empty = demo.client.get("/hall")
    assert empty.status_code == 200 and "暂无叫号" in empty.text and 'http-equiv="refresh"' in empty.text
    demo.client.post(URL, json={"counter": "pd-zhengwu"})
    browser = TestClient(demo.client.app, base_url=str(demo.client.base_url))
    assert page_login(browser, demo.tokens["陈静"], "/ui/hall/call").status_code == 303
    panel = browser.get("/ui/hall/call")
    assert panel.status_code == 200 and "叫下一位" in panel.text and "等候 1 人" in panel.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', panel.text).group(1)
    forged = browser.post("/ui/hall/call", data={"csrf": "0" * 64}, headers={"Origin": origin_of(browser)},
                          follow_redirects=False)
    assert forged.status_code != 303
    called = browser.post("/ui/hall/call", data={"csrf": csrf}, headers={"Origin": origin_of(browser)},
                          follow_redirects=False)
    assert called.status_code == 303 and called.headers["location"].startswith("/ui/hall/call?called=")
    shown = browser.get(called.headers["location"])
    assert "A001" in shown.text
    board = demo.client.get("/hall", params={"counter": "pd-zhengwu"})
    assert 'id="latest"' in board.text and "A001" in board.text and "浦东" in board.text


def test_returning_gives_a_new_ticket_on_another_day(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    body = {"number": case["number"], "query_code": case["query_code"]}
    with clock.frozen(at("2026-12-07 16:50")):
        monday = demo.client.post(f"{URL}/returning", json=body).json()
        assert monday["number"] == "F001" and monday["status"] == "waiting"
    with clock.frozen(at("2026-12-08 09:00")):  # yesterday's number is never called again
        tuesday = demo.client.post(f"{URL}/returning", json=body)
        assert tuesday.status_code == 201, tuesday.text
        assert tuesday.json()["id"] != monday["id"] and tuesday.json()["number"] == "F001"
        called = demo.client.post(f"{URL}/call-next", headers=demo.h("陈静")).json()["ticket"]
        assert called["id"] == tuesday.json()["id"]


def test_ahead_counts_the_same_queue_issued_earlier_today(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    with clock.frozen(at("2026-12-07 16:00")):
        demo.client.post(URL, json={"counter": "pd-zhengwu"})
        left = demo.client.post(URL, json={"counter": "pd-zhengwu"}).json()
        assert left["ahead"] == 1
    with clock.frozen(at("2026-12-08 09:00")):
        assert demo.client.get(f"{URL}/{left['id']}").json()["ahead"] == 0  # yesterday's queue is gone
        f1 = demo.client.post(f"{URL}/returning", json={"number": case["number"],
                                                       "query_code": case["query_code"]}).json()
        a1 = demo.client.post(URL, json={"counter": "pd-zhengwu"}).json()
        b1 = demo.client.post(URL, json={"counter": "pd-zhengwu", "group": "B"}).json()
        other = demo.client.post(URL, json={"counter": "qd-xihai"}).json()
        assert f1["ahead"] == 0 and a1["ahead"] == 0  # the 复诊号 is the companion's queue, not the walk-ins'
        assert b1["ahead"] == 1 and other["ahead"] == 0
        demo.client.post(f"{URL}/call-next", headers=demo.h("陈静"))  # F001
        demo.client.post(f"{URL}/call-next", headers=demo.h("陈静"))  # A001
        assert demo.client.get(f"{URL}/{b1['id']}").json()["ahead"] == 0
