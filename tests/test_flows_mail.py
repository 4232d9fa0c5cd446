"""邮寄送达: waybills, address validation, clerk tracking, signed carrier callbacks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ALL_GGCS, Demo

from engine.delivery import sign

ADDRESS = {"name": "张三", "phone": "13800138000", "address": "上海市浦东新区世纪大道 100 号",
           "postal_code": "200120"}


@pytest.fixture
def issued(demo: Demo, tmp_path: Path) -> Iterator[tuple[Demo, str]]:
    from core.settings import get_settings
    from storage.object_factory import get_store

    get_settings().object_dir = tmp_path / "objects"
    get_store.cache_clear()
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    for t in ("accept", "start_review", "approve", "issue"):
        demo.fire("陈静", n, t)
    yield demo, n


def callback(demo: Demo, body: dict, secret: str | None = None, ts: str | None = None,
             carrier: str = "counter") -> tuple[int, dict]:
    raw = json.dumps(body).encode()
    ts = ts or str(int(time.time()))
    r = demo.client.post(f"/api/v1/carriers/{carrier}/callback", content=raw, headers={
        "X-Tongban-Timestamp": ts, "X-Tongban-Signature": sign(raw, ts, secret),
        "Content-Type": "application/json"})
    return r.status_code, r.json()


def snapshot(demo: Demo, n: str) -> tuple:
    case = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("陈静")).json()
    return (case["state"]["id"], case["version"], demo.count("tracking_events"), demo.count("history"),
            demo.client.get(f"/api/v1/cases/{n}/waybills", headers=demo.h("陈静")).json()["items"][0]["status"])


def test_waybill_needs_a_valid_address_and_prints_a_label(issued: tuple[Demo, str]) -> None:
    demo, n = issued
    bad = demo.client.post(f"/api/v1/cases/{n}/waybills", headers=demo.h("陈静"),
                           json={"recipient": {**ADDRESS, "phone": "12345"}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "recipient.phone"
    bad = demo.client.post(f"/api/v1/cases/{n}/waybills", headers=demo.h("陈静"),
                           json={"recipient": {**ADDRESS, "address": "某处"}})
    assert bad.json()["errors"][0]["field"] == "recipient.address"
    assert demo.count("waybills") == 0
    r = demo.client.post(f"/api/v1/cases/{n}/waybills", headers=demo.h("陈静"), json={"recipient": ADDRESS})
    assert r.status_code == 201, r.text
    w = r.json()
    assert w["sender_counter"] == "pd-zhengwu" and w["status"] == "created" and "公共场所卫生许可证" in w["contents"]
    label = demo.client.get(w["label_pdf"], headers=demo.h("陈静"))
    assert label.status_code == 200 and label.content[:5] == b"%PDF-"
    # Other counters' clerks cannot book for this case.
    assert demo.client.post(f"/api/v1/cases/{n}/waybills", headers=demo.h("王芳"),
                            json={"recipient": ADDRESS}).status_code == 403


def test_forged_carrier_callback_is_refused_and_changes_nothing(issued: tuple[Demo, str]) -> None:
    demo, n = issued
    w = demo.client.post(f"/api/v1/cases/{n}/waybills", headers=demo.h("陈静"),
                         json={"recipient": ADDRESS}).json()
    event = {"waybill": w["number"], "event_id": "evt-1", "status": "delivered", "location": "上海"}
    before = snapshot(demo, n)
    status, body = callback(demo, event, secret="not-the-secret")
    assert status == 401 and body["type"] == "/problems/bad-signature"
    stale = str(int(time.time()) - 3600)
    assert callback(demo, event, ts=stale)[0] == 401  # a replayed old signature
    r = demo.client.post("/api/v1/carriers/counter/callback", content=json.dumps(event).encode())
    assert r.status_code == 401  # unsigned
    assert snapshot(demo, n) == before
    # The genuine callback completes the case; replaying it changes nothing more.
    status, body = callback(demo, {**event, "status": "in_transit", "event_id": "evt-0"})
    assert status == 200 and body["fired"] is None
    status, body = callback(demo, event)
    assert status == 200 and body["fired"] == "deliver"
    after = snapshot(demo, n)
    assert after[0] == "completed" and after[4] == "delivered"
    status, body = callback(demo, event)
    assert status == 200 and body["duplicate"] and snapshot(demo, n) == after


def test_clerk_confirms_delivery_by_hand(issued: tuple[Demo, str]) -> None:
    demo, n = issued
    w = demo.client.post(f"/api/v1/cases/{n}/waybills", headers=demo.h("陈静"),
                         json={"recipient": ADDRESS}).json()
    r = demo.client.post(f"/api/v1/waybills/{w['number']}/events", headers=demo.h("陈静"),
                         json={"status": "delivered", "note": "申请人到窗口签收"})
    assert r.status_code == 200, r.text
    assert r.json()["fired"] == "deliver"
    case = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("陈静")).json()
    assert case["state"]["id"] == "completed"
    events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("陈静")).json()["items"]
    assert events[-1]["trigger"] == "deliver" and events[-1]["actor_name"] == "系统"
