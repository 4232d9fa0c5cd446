"""Notifications that did not go out, listed and sent again: the supervisors' API (each sees the
messages about the counters of their regions, addresses masked, retries only those) on SQLite
and PG, and ``tongban notify failed|retry`` in-process. The failures are real: a local SMS
gateway refuses the numbers, and takes them once it no longer does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo
from local_servers import SmsGateway
from typer.testing import CliRunner

from cli.main import app as cli_app
from core import clock
from core.settings import get_settings
from engine import notify, notify_failed
from storage.db import get_engine, session_scope
from storage.flow_tables import T_NOTE
from storage.tables import T_CASE

MONDAY_EARLY = datetime(2026, 12, 7, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
REFUSED = {"13800000006", "13800000007", "13900000008", "13700000009"}


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmsGateway]:
    server = SmsGateway()
    server.refuse |= REFUSED
    s = get_settings()
    monkeypatch.setattr(s, "sms_url", server.url)
    monkeypatch.setattr(s, "sms_token", type(s.sms_token)("gw-secret"))
    monkeypatch.setattr(s, "notify_backoff_seconds", 0.0)
    monkeypatch.setattr(s, "notify_timeout_seconds", 3.0)
    yield server
    server.stop()


def _status(demo: Demo, nid: int) -> tuple[str, int]:
    with demo.engine.connect() as conn:
        row = conn.execute(sa.select(T_NOTE.c.status, T_NOTE.c.attempts).where(T_NOTE.c.id == nid)).one()
    return row.status, row.attempts


def _ids(demo: Demo) -> dict[str, int]:
    with demo.engine.connect() as conn:
        return {key: nid for key, nid in conn.execute(sa.select(T_NOTE.c.dedupe_key, T_NOTE.c.id))}


def test_supervisors_see_and_resend_the_failed_messages_of_their_regions(demo: Demo, gateway: SmsGateway) -> None:
    with clock.frozen(MONDAY_EARLY):  # two bookings at 浦东 (310115)
        for phone in ("13800000007", "13800000006"):
            r = demo.client.post("/api/v1/appointments", json={
                "counter": "pd-zhengwu", "item": "GGCSWSXK", "date": "2026-12-07", "start": "09:00",
                "name": "张三", "phone": phone})
            assert r.status_code == 201, r.text
    number = demo.create("黄丽", "GGCSWSXK", ALL_GGCS)["number"]  # a case at 南沙 (440115)
    with session_scope(demo.engine) as s:
        case_id = s.execute(sa.select(T_CASE.c.id).where(T_CASE.c.number == number)).scalar_one()
        notify.to_applicant_phone(s, "test:case", "13900000008", "result", "您的办件已办结。", case_id=case_id)
        notify.queue(s, "test:nowhere", audience="applicant", kind="test", message="与窗口无关的通知",
                     channel="sms", address="13700000009")
    assert notify.deliver_due(demo.engine, "drainer-1") == {"sent": 0, "retry": 0, "failed": 4, "settled": 0}
    ids = _ids(demo)
    booking, other = sorted(v for k, v in ids.items() if k.startswith("appointment:"))

    refused = demo.client.get("/api/v1/notifications/failed", headers=demo.h("陈静"))
    assert refused.status_code == 403 and refused.json()["missing"] == ["role:supervisor"]
    first = demo.client.get("/api/v1/notifications/failed", params={"limit": 1}, headers=demo.h("赵督查"))
    pudong = first.json()["items"]
    assert [n["id"] for n in pudong] == [booking] and first.json()["next_cursor"] == str(booking)
    assert f"cursor={booking}" in first.headers["Link"]
    rest = demo.client.get("/api/v1/notifications/failed", params={"limit": 1, "cursor": str(booking)},
                           headers=demo.h("赵督查")).json()
    # 南沙's is not theirs, the unscoped one nobody's.
    assert [n["id"] for n in rest["items"]] == [other] and rest["next_cursor"] is None
    (seen,) = pudong
    assert seen["address"] == "138****0007" and "13800000007" not in str(pudong)
    assert (seen["case_number"], seen["counters"], seen["regions"]) == (None, ["pd-zhengwu"], ["310115"])
    assert (seen["status_label"], seen["channel_label"], seen["kind_label"], seen["attempts"]) == (
        "发送失败", "短信", "预约成功", 1)
    assert seen["last_error"] and seen["last_attempt_at"]
    nansha = demo.client.get("/api/v1/notifications/failed", headers=demo.h("钱督查")).json()["items"]
    assert [(n["id"], n["case_number"], n["regions"]) for n in nansha] == [(ids["test:case"], number, ["440115"])]

    def retry(who: str, nid: int) -> tuple[int, dict]:
        r = demo.client.post(f"/api/v1/notifications/{nid}/retry", headers=demo.h(who))
        return r.status_code, r.json()

    code, body = retry("钱督查", booking)
    assert code == 403 and body["missing"] == ["region"]
    assert retry("赵督查", ids["test:nowhere"])[0] == 403
    assert retry("陈静", booking)[0] == 403
    assert retry("赵督查", 999_999)[0] == 404
    assert _status(demo, booking) == ("failed", 1)  # refused: nothing changed
    code, body = retry("赵督查", booking)
    assert code == 200 and (body["status"], body["status_label"], body["attempts"]) == ("pending", "待发送", 0)
    code, body = retry("赵督查", booking)
    assert code == 409 and "待发送" in body["detail"]
    gateway.refuse.discard("13800000007")  # the number fixed at the gateway: the retry goes out, once
    assert notify.deliver_due(demo.engine, "drainer-1") == {"sent": 1, "retry": 0, "failed": 0, "settled": 0}
    assert _status(demo, booking) == ("sent", 1)
    assert [b["to"] for status, _, b in gateway.requests if status == 200] == ["13800000007"]
    left = demo.client.get("/api/v1/notifications/failed", headers=demo.h("赵督查")).json()
    assert [n["id"] for n in left["items"]] == [other] and left["next_cursor"] is None


def _cli(demo: Demo, args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("TONGBAN_DATABASE_URL", demo.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    get_engine.cache_clear()  # one engine per process and URL: the command runs in this one
    try:
        r = CliRunner().invoke(cli_app, args)
    finally:
        get_settings.cache_clear()
        get_engine.cache_clear()
    return r.exit_code, r.output


def test_the_notify_commands_list_and_resend(sqlite_demo: Demo, gateway: SmsGateway,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    demo = sqlite_demo
    number = demo.create("陈静", "GGCSWSXK", ALL_GGCS)["number"]
    with session_scope(demo.engine) as s:
        case_id = s.execute(sa.select(T_CASE.c.id).where(T_CASE.c.number == number)).scalar_one()
        notify.to_applicant_phone(s, "test:refused", "13900000008", "result", "您的办件已办结。", case_id=case_id)
        notify.to_applicant_phone(s, "test:landline", "0531-88880000", "progress", "您的办件已受理。", case_id=case_id)
        notify.queue(s, "test:mail", audience="supervisor", kind="bad_rating", message="差评待整改",
                     channel="email", address="duban@pudong.example.cn")  # no mail server configured
    assert notify.deliver_due(demo.engine, "drainer-1")["failed"] == 1
    ids = _ids(demo)

    code, out = _cli(demo, ["notify", "failed"], monkeypatch)
    assert code == 0 and "共 3 条未发出的通知" in out, out
    line = next(ln for ln in out.splitlines() if ln.startswith(f"{ids['test:refused']} "))
    assert number in line and "办理结果通知" in line and "发送失败" in line and "短信 139****0008" in line
    assert "1 次" in line and "+08:00" in line  # the time in Beijing time
    assert "13900000008" not in out and "88880000" not in out and "d***@pudong.example.cn" in out
    assert "无可用地址" in out and "未配置邮件发送服务" in out  # the reasons, as the outbox kept them
    code, out = _cli(demo, ["notify", "failed", "--region", "440115"], monkeypatch)
    assert "共 0 条未发出的通知" in out, out
    monkeypatch.setattr(notify_failed, "CHUNK", 1)  # the regions judged over several reads
    code, out = _cli(demo, ["notify", "failed", "--region", "310115"], monkeypatch)
    assert "共 2 条未发出的通知" in out and "d***@" not in out, out
    code, out = _cli(demo, ["notify", "failed", "--limit", "1"], monkeypatch)
    assert "仅列出最早的 1 条未发出的通知" in out and str(ids["test:refused"]) in out, out
    code, out = _cli(demo, ["notify", "retry"], monkeypatch)
    assert code == 2 and "--all" in out
    code, out = _cli(demo, ["notify", "retry", str(ids["test:refused"]), "999999"], monkeypatch)
    assert code == 1 and "已重新排入 1 条通知" in out and "通知 999999: 没有通知 999999" in out, out
    assert _status(demo, ids["test:refused"]) == ("pending", 0)
    code, out = _cli(demo, ["notify", "retry", "--all", "--region", "310115"], monkeypatch)
    assert code == 0 and "已重新排入 1 条通知" in out, out  # the landline's (the mail is about no counter)
    code, out = _cli(demo, ["notify", "retry", "--all"], monkeypatch)
    assert code == 0 and "已重新排入 1 条通知" in out, out  # the mail's
    code, out = _cli(demo, ["notify", "failed"], monkeypatch)
    assert "共 0 条未发出的通知" in out, out
