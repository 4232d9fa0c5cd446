"""Video rooms without media, on SQLite and PostgreSQL: who may open them, signed join links,
refusals (403), rooms closing with their case's state, and the 远程踏勘 checklist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.errors import Forbidden, GuardFailed, InvalidInput
from storage.db import session_scope
from storage.video_tables import VideoRoom
from tests.conftest import ALL_GGCS, Demo
from tests.test_video_media import history_kinds, inspection_case, link, open_room
from video import inspection, links, rooms

OFFER = {"sdp": "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n", "type": "offer"}


def join_status(demo: Demo, token: str) -> tuple[int, dict]:
    r = demo.client.post("/api/v1/video/join", json={"token": token, **OFFER})
    return r.status_code, r.json()


def test_only_a_holding_clerk_opens_a_room_of_the_declared_kind(demo: Demo) -> None:
    number = inspection_case(demo)
    # 王芳's counter (Jinan, intake) does not hold the case in 现场踏勘.
    r = demo.client.post(f"/api/v1/cases/{number}/video-rooms", headers=demo.h("王芳"), json={})
    assert r.status_code == 403 and r.json()["missing"] == ["counter"]
    r = demo.client.post(f"/api/v1/cases/{number}/video-rooms", headers=demo.h("李强"),
                         json={"kind": "guidance"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"
    r = demo.client.post(f"/api/v1/cases/{number}/video-rooms", headers=demo.h("李强"), json={})
    assert r.status_code == 201
    room = r.json()
    assert (room["kind"], room["state"], room["adhoc"], room["status"]) == ("inspection", "inspection", False, "open")
    # Opening again returns the same open room.
    again = demo.client.post(f"/api/v1/cases/{number}/video-rooms", headers=demo.h("李强"), json={})
    assert again.json()["id"] == room["id"]
    assert history_kinds(demo, number).count("video_open") == 1


def test_adhoc_consultation_in_a_state_without_a_video_step(demo: Demo) -> None:
    n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")["number"]
    r = demo.client.post(f"/api/v1/cases/{n}/video-rooms", headers=demo.h("王芳"), json={"kind": "inspection"})
    assert r.status_code == 422 and "consultation" in r.json()["detail"]
    r = demo.client.post(f"/api/v1/cases/{n}/video-rooms", headers=demo.h("王芳"), json={})
    assert r.status_code == 201 and r.json()["adhoc"] is True and r.json()["kind"] == "consultation"


def test_forged_expired_and_foreign_links_are_refused(demo: Demo) -> None:
    number = inspection_case(demo)
    room = open_room(demo, number)
    other = inspection_case(demo)
    good = link(demo, room, "applicant", "张三")

    body, _, sig = good.partition(".")
    forged = body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    status, problem = join_status(demo, forged)
    assert status == 403 and "签名" in problem["detail"]

    expired, _ = links.issue(number, room, "applicant", "张三", None, minutes=5,
                             now=datetime.now(UTC) - timedelta(minutes=10))
    status, problem = join_status(demo, expired)
    assert status == 403 and "过期" in problem["detail"]

    foreign, _ = links.issue(other, room, "applicant", "张三", None)  # validly signed, other case
    status, problem = join_status(demo, foreign)
    assert status == 403 and "不属于此办件" in problem["detail"]
    assert demo.client.get(f"/video/join?t={foreign}").status_code == 403

    # A good link with an unusable offer: 422 naming the field, nobody joined.
    status, problem = join_status(demo, good)
    assert status == 422 and problem["errors"][0]["field"] == "sdp"

    # The page of a good link renders, in Chinese, with the join script.
    page = demo.client.get(f"/video/join?t={good}")
    assert page.status_code == 200 and "云见面" in page.text and "room.js" in page.text
    assert demo.count("video_participants") == 0  # nothing was joined by refused links


def test_link_requests_are_checked(demo: Demo) -> None:
    number = inspection_case(demo)
    room = open_room(demo, number)
    h = demo.h("李强")
    r = demo.client.post(f"/api/v1/video/rooms/{room}/links", headers=h, json={"role": "mayor", "name": "x"})
    assert r.status_code == 422
    r = demo.client.post(f"/api/v1/video/rooms/{room}/links", headers=h,
                         json={"role": "applicant", "name": "张三", "clerk_id": demo.actor("李强").id})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "clerk_id"
    r = demo.client.post(f"/api/v1/video/rooms/{room}/links", headers=demo.h("王芳"),
                         json={"role": "applicant", "name": "张三"})
    assert r.status_code == 403
    r = demo.client.post(f"/api/v1/video/rooms/{room}/links", headers=h, json={"role": "clerk", "name": "李强"})
    claim = links.verify(r.json()["token"])
    assert claim.clerk_id == demo.actor("李强").id and claim.room_id == room and claim.number == number
    assert r.json()["url"].endswith("/video/join?t=" + r.json()["token"])


def test_a_room_whose_case_left_the_state_refuses_joins_and_closes(demo: Demo) -> None:
    number = inspection_case(demo)
    room = open_room(demo, number)
    token = link(demo, room, "applicant", "张三")
    demo.fire("李强", number, "inspection_passed")
    status, problem = join_status(demo, token)
    assert status == 403 and problem["missing"] == ["room_open"]
    with session_scope(demo.engine) as s:
        row = s.execute(sa.select(VideoRoom.__table__).where(VideoRoom.__table__.c.id == room)).mappings().one()
    assert (row["status"], row["close_reason"]) == ("closed", "state_left")
    assert "video_close" in history_kinds(demo, number)
    assert demo.client.get(f"/video/join?t={token}").status_code == 403
    # A clerk ending a closed room changes nothing.
    r = demo.client.post(f"/api/v1/video/rooms/{room}/close", headers=demo.h("李强"))
    assert r.status_code == 200 and history_kinds(demo, number).count("video_close") == 1


def test_inspection_checklist_fires_the_transition(demo: Demo) -> None:
    number = inspection_case(demo)
    room = open_room(demo, number)
    li = demo.actor("李强")
    with session_scope(demo.engine) as s:
        entries = inspection.checklist_of(s, number)
    assert [e["id"] for e in entries] == ["layout_matches", "facilities_ok", "rules_posted"]
    with session_scope(demo.engine) as s, pytest.raises(InvalidInput) as e:
        inspection.submit(s, room, li, {"layout_matches": True}, {}, None)
    assert e.value.extra["errors"][0]["field"] == "results.facilities_ok"
    with session_scope(demo.engine) as s, pytest.raises(InvalidInput) as e:
        inspection.submit(s, room, li, {x["id"]: x["id"] != "rules_posted" for x in entries}, {}, "  ")
    assert e.value.extra["errors"][0]["field"] == "comment"
    # 王芳 (intake counter, clerk only) may not decide the inspection: the engine says why.
    with session_scope(demo.engine) as s, pytest.raises(Forbidden):
        inspection.submit(s, room, demo.actor("王芳"), {x["id"]: True for x in entries}, {}, None)
    with session_scope(demo.engine) as s:
        out = inspection.submit(s, room, li, {x["id"]: True for x in entries},
                                {"facilities_ok": "消毒柜运转正常"}, None)
    assert out["trigger"] == "inspection_passed" and out["state"] == "review"
    case = demo.client.get(f"/api/v1/cases/{number}", headers=demo.h("李强")).json()
    assert case["state"]["id"] == "review"
    events = demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h("李强")).json()["items"]
    fired = next(e for e in events if e.get("trigger") == "inspection_passed")
    items = fired["data"]["checklist"]["items"]
    assert [i["ok"] for i in items] == [True, True, True] and items[1]["note"] == "消毒柜运转正常"
    rooms_out = demo.client.get(f"/api/v1/cases/{number}/video-rooms", headers=demo.h("李强")).json()
    assert rooms_out["items"][0]["checklist"]["result"] == "passed"
    # The room's case has moved on: a second submission is refused.
    with session_scope(demo.engine) as s, pytest.raises(Forbidden):
        inspection.submit(s, room, li, {x["id"]: True for x in entries}, {}, None)


def test_failed_inspection_needs_reasons_and_rejects(demo: Demo) -> None:
    number = inspection_case(demo)
    room = open_room(demo, number)
    li = demo.actor("李强")
    answers = {"layout_matches": True, "facilities_ok": False, "rules_posted": True}
    with session_scope(demo.engine) as s:
        out = inspection.submit(s, room, li, answers, {"facilities_ok": "无消毒设施"}, "卫生设施不全")
    assert (out["trigger"], out["state"]) == ("inspection_failed", "rejected")
    with session_scope(demo.engine) as s:
        assert rooms.still_valid(s, room) == "state_left"


def test_guard_is_the_engines(demo: Demo) -> None:
    """Bypassing the checklist's own reason check still meets the item's comment_given guard."""
    number = inspection_case(demo)
    with session_scope(demo.engine) as s, pytest.raises(GuardFailed):
        from engine.advance import advance

        advance(s, number, "inspection_failed", demo.actor("李强"), {})


def test_with_the_janus_backend_closing_a_room_queues_its_recording_job(
        demo: Demo, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The close and its recording job commit together; the job, run from the outbox, finishes
    even with Janus gone and nothing recorded (a room nobody joined), storing nothing."""
    from core.settings import get_settings
    from flows import jobs, outbox
    from tests.conftest import free_port

    settings = get_settings()
    monkeypatch.setattr(settings, "video_backend", "janus")
    monkeypatch.setattr(settings, "janus_url", f"http://127.0.0.1:{free_port()}/janus")  # nobody listens
    monkeypatch.setattr(settings, "data_dir", tmp_path)
    number = inspection_case(demo)
    room = open_room(demo, number)
    assert demo.count("outbox", job="janus_recordings") == 0
    r = demo.client.post(f"/api/v1/video/rooms/{room}/close", headers=demo.h("李强"))
    assert r.status_code == 200, r.text
    assert demo.count("outbox", job="janus_recordings", status="pending") == 1
    (job,) = [j for j in outbox.claim(demo.engine, None, 100) if j["job"] == "janus_recordings"]
    assert job["payload"]["room"] == room
    assert job["region_code"] == "video"  # where Janus's disk is, not the counter's regional pool
    assert jobs.run(demo.engine, job)["recordings"] == []
    assert demo.count("outbox", job="janus_recordings", status="done") == 1
    assert "video_recording" not in history_kinds(demo, number)
