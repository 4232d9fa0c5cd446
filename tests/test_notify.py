"""Notifications that leave the building (SQLite and PG): a 差评's mail to the region's
supervisors through a local SMTP server that is down at first (the attempt logged, retried, then
delivered once), a message a dead drainer held sent after its lease, a refused recipient given
up; bookings' SMS through a local HTTP gateway with two drainers racing (each message accepted
once), a 503 retried, a 400 given up; the 补正 and result messages of the transitions' job,
queued once per job id, a landline's kept unrouted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo, answers_for
from local_servers import SmsGateway, SmtpServer

from core import clock
from core.settings import get_settings
from engine import notify
from engine.notify_send import message_id
from flows import jobs, outbox
from storage.db import session_scope
from storage.flow_tables import T_NOTE, T_NOTE_LOG
from storage.object_factory import get_store

BEIJING = ZoneInfo("Asia/Shanghai")
PAD = "浦东综合窗口评价器"  # the window's evaluation pad (its own account, role pad)
MONDAY_EARLY = datetime(2026, 12, 7, 8, 0, tzinfo=BEIJING)


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    s = get_settings()
    monkeypatch.setattr(s, "object_dir", tmp_path / "objects")  # the transitions' notices are drawn too
    get_store.cache_clear()
    monkeypatch.setattr(s, "notify_backoff_seconds", 0.0)  # a retry is due at once: no waiting in tests
    monkeypatch.setattr(s, "notify_timeout_seconds", 3.0)
    monkeypatch.setattr(s, "notify_supervisor_emails", {"310115": ["duban@pudong.example.cn"]})
    monkeypatch.setattr(s, "progress_rate_per_minute", 1000)
    yield
    get_store.cache_clear()


def notes(demo: Demo, **where: object) -> list[dict]:
    q = sa.select(T_NOTE).order_by(T_NOTE.c.id)
    for k, v in where.items():
        q = q.where(T_NOTE.c[k] == v)
    with demo.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def test_a_bad_ratings_mail_waits_out_the_smtp_server_being_down_and_arrives_once(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    smtp = SmtpServer()  # its port is chosen, nothing listens on it yet
    monkeypatch.setattr(get_settings(), "smtp_host", "127.0.0.1")
    monkeypatch.setattr(get_settings(), "smtp_port", smtp.port)
    ticket = demo.client.post("/api/v1/tickets", json={"counter": "pd-zhengwu"}).json()
    demo.client.post("/api/v1/tickets/call-next", headers=demo.h("陈静"))
    bad = demo.client.post("/api/v1/evaluations", headers=demo.h(PAD), json={
        "channel": "window", "ticket": ticket["id"], "level": 1, "reasons": ["attitude"], "text": "态度生硬"})
    assert bad.status_code == 201, bad.text
    (mail,) = notes(demo, kind="bad_rating")
    assert mail["channel"] == "email" and mail["address"] == "duban@pudong.example.cn"

    down = notify.deliver_due(demo.engine, "drainer-1")
    assert down == {"sent": 0, "retry": 1, "failed": 0, "settled": 0}
    (mail,) = notes(demo, kind="bad_rating")
    assert mail["status"] == "pending" and mail["attempts"] == 1 and "不可达" in mail["last_error"]

    smtp.start()
    try:
        assert notify.deliver_due(demo.engine, "drainer-1")["sent"] == 1
        assert notify.deliver_due(demo.engine, "drainer-2")["sent"] == 0  # delivered: never again
        (received,) = smtp.received
        # A drainer died holding a message: it waits out the lease, then goes, once.
        smtp.refuse.add("nobody@pudong.example.cn")
        with session_scope(demo.engine) as s:
            notify.queue(s, "test:held", audience="supervisor", kind="test", message="被占用的通知",
                         channel="email", address="zhiban@pudong.example.cn")
            notify.queue(s, "test:refused", audience="supervisor", kind="test", message="收件人不存在",
                         channel="email", address="nobody@pudong.example.cn")
        with demo.engine.begin() as conn:
            conn.execute(sa.update(T_NOTE).where(T_NOTE.c.dedupe_key == "test:held").values(
                lease_owner="dead-drainer", lease_until=clock.now() + timedelta(minutes=5)))
        assert notify.deliver_due(demo.engine, "drainer-1") == {"sent": 0, "retry": 0, "failed": 1, "settled": 0}
        with demo.engine.begin() as conn:
            conn.execute(sa.update(T_NOTE).where(T_NOTE.c.dedupe_key == "test:held").values(
                lease_until=clock.now() - timedelta(seconds=1)))
        assert notify.deliver_due(demo.engine, "drainer-2")["sent"] == 1
        assert notify.deliver_due(demo.engine, "drainer-1") == {"sent": 0, "retry": 0, "failed": 0, "settled": 0}
    finally:
        smtp.stop()
    assert [r[1] for r in smtp.received] == [["duban@pudong.example.cn"], ["zhiban@pudong.example.cn"]]
    (refused,) = notes(demo, dedupe_key="test:refused")
    assert refused["status"] == "failed" and refused["attempts"] == 1 and "拒收" in refused["last_error"]
    sender, recipients, message = received
    assert recipients == ["duban@pudong.example.cn"] and sender == get_settings().smtp_from
    assert message["Subject"].startswith("差评待整改") and message["Message-ID"] == message_id(mail["dedupe_key"])
    body = message.get_content()
    assert "非常不满意" in body and "服务态度差" in body and "态度生硬" in body
    with session_scope(demo.engine) as s:
        seen = notify.view(s, mail["id"])
    assert seen["status"] == "sent" and seen["provider_id"] == message_id(mail["dedupe_key"])
    assert [(a["attempt"], a["ok"]) for a in seen["log"]] == [(1, False), (2, True)]


def test_booking_messages_go_through_the_sms_gateway_once_whoever_drains(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = SmsGateway()
    monkeypatch.setattr(get_settings(), "sms_url", gateway.url)
    monkeypatch.setattr(get_settings(), "sms_token", type(get_settings().sms_token)("gw-secret"))
    phones = [f"1380000{i:04d}" for i in range(8)]
    gateway.refuse.add(phones[7])  # the gateway refuses this number for good
    gateway.answers.append(503)  # and is unwell for its first request
    try:
        with clock.frozen(MONDAY_EARLY):
            starts = ["09:00", "09:00", "09:30", "09:30", "10:00", "10:00", "10:30", "10:30"]
            for phone, start in zip(phones, starts, strict=True):
                r = demo.client.post("/api/v1/appointments", json={
                    "counter": "pd-zhengwu", "item": "GGCSWSXK", "date": "2026-12-07", "start": start,
                    "name": "张三", "phone": phone})
                assert r.status_code == 201, r.text
        rounds: list[dict[str, int]] = []

        def drain(name: str) -> None:
            rounds.append(notify.deliver_due(demo.engine, name))

        for _ in range(3):  # two drainers at once, three times: the 503 is retried in a later round
            threads = [threading.Thread(target=drain, args=(f"drainer-{n}",)) for n in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        gateway.stop()
    accepted = [body["id"] for status, _, body in gateway.requests if status == 200]
    assert len(accepted) == len(set(accepted)) == 7  # each booking's SMS accepted once
    refused = [body["to"] for status, _, body in gateway.requests if status == 400]
    assert refused == [phones[7]]  # a refusal is final: asked once
    statuses = [status for status, _, _ in gateway.requests]
    assert statuses.count(503) == 1 and len(statuses) == 9
    status, headers, body = next(r for r in gateway.requests if r[0] == 200)
    assert headers["Authorization"] == "Bearer gw-secret" and headers["Idempotency-Key"] == body["id"]
    assert body["text"].startswith("【通办】您已预约12月7日") and "预约码" in body["text"]
    assert sorted(n["status"] for n in notes(demo, kind="appointment_booked")) == ["failed"] + ["sent"] * 7
    with demo.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(T_NOTE_LOG)).scalar_one() == 9


def notify_jobs(demo: Demo) -> None:
    """Run the pending notify_applicant jobs (only them: the notices the transitions draw are
    another module's subject, and the slowest part)."""
    with demo.engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM outbox WHERE job = 'notify_applicant' AND status = 'pending'"))
                   .scalars())
    for job in outbox.claim(demo.engine, None, 100, job_ids=ids):
        jobs.run(demo.engine, job)


def test_supplement_and_result_messages_are_queued_once_per_job(sqlite_demo: Demo) -> None:
    # Queuing is the job's transaction on either database (the delivery tests above run on both).
    demo = sqlite_demo
    applicant = {"name": "王五", "kind": "person", "phone": "13912345678"}
    r = demo.client.post("/api/v1/cases", headers=demo.h("陈静"), json={
        "item_code": "GGCSWSXK", "applicant": applicant, "materials": ALL_GGCS,
        "situation": answers_for("GGCSWSXK", ALL_GGCS)})
    assert r.status_code == 201, r.text
    case = r.json()
    demo.fire("陈静", case["number"], "request_supplement", case["version"], comment="请补正平面图")
    notify_jobs(demo)
    sms = notes(demo, kind="supplement")
    assert len(sms) == 1 and sms[0]["channel"] == "sms" and sms[0]["address"] == "13912345678"
    assert "补齐材料" in sms[0]["message"] and case["number"] in sms[0]["message"]
    with demo.engine.begin() as conn:  # a replayed job: the effect exists, nothing is queued again
        conn.execute(sa.text("UPDATE outbox SET status = 'pending' WHERE job = 'notify_applicant'"))
    notify_jobs(demo)
    assert len(notes(demo, kind="supplement")) == 1
    other = demo.create("陈静", "GGCSWSXK", ALL_GGCS, applicant=applicant)
    demo.fire("陈静", other["number"], "refuse", other["version"], comment="不属于本机关职权范围")
    notify_jobs(demo)
    (result,) = notes(demo, kind="result")
    assert result["case_id"] is not None and "不予受理" in result["message"] and "评价" in result["message"]
    landline = demo.create("陈静", "GGCSWSXK", ALL_GGCS)  # the demo applicant gives a landline only
    demo.fire("陈静", landline["number"], "refuse", landline["version"], comment="不属于本机关职权范围")
    notify_jobs(demo)
    kept = [n for n in notes(demo, kind="result") if n["case_id"] != result["case_id"]]
    assert [(n["status"], n["channel"]) for n in kept] == [("unrouted", None)]  # kept, with the reason
