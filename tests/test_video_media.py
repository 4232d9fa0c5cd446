"""Video rooms with real aiortc peers against a real uvicorn server: relay, recording, capture,
chat and file transfer end up on the case (SQLite; the room logic is database-neutral and the
database side is covered on both engines in test_video_rooms.py)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import av
import pytest
import sqlalchemy as sa
from PIL import Image

from engine import scans
from engine.actors import SYSTEM
from storage.db import session_scope
from storage.object_local import LocalStore
from storage.video_tables import VideoRecording
from tests.conftest import ALL_GGCS, Demo
from video.client import Participant, wait_until
from video.hub import Hub
from video.synthetic import PatternTrack, ToneTrack

# Peers exchange media: each test runs in a network namespace of its own (tests/netns.py).
pytestmark = pytest.mark.netns


def inspection_case(demo: Demo) -> str:
    """A 公共场所卫生许可 case taken in Jinan, competent in Qingdao, now in 现场踏勘."""
    n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")["number"]
    demo.fire("王芳", n, "accept")
    demo.fire("李强", n, "start_inspection")
    return n


def open_room(demo: Demo, number: str, who: str = "李强") -> str:
    r = demo.client.post(f"/api/v1/cases/{number}/video-rooms", headers=demo.h(who), json={})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def link(demo: Demo, room: str, role: str, name: str, who: str = "李强", **extra: Any) -> str:
    r = demo.client.post(f"/api/v1/video/rooms/{room}/links", headers=demo.h(who),
                         json={"role": role, "name": name, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def history_kinds(demo: Demo, number: str) -> list[str]:
    events = demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h("李强")).json()["items"]
    return [e["kind"] for e in events]


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_three_peers_relay_record_capture_chat_and_files(sqlite_demo: Demo, serve_app: Any,
                                                         tmp_path: Path) -> None:
    demo = sqlite_demo
    number = inspection_case(demo)
    room = open_room(demo, number)
    approver_id = demo.actor("刘洋").id  # a remote approver at another region's counter
    tokens = {"clerk": link(demo, room, "clerk", "李强"),
              "applicant": link(demo, room, "applicant", "张三"),
              "approver": link(demo, room, "approver", "刘洋", clerk_id=approver_id)}
    store = LocalStore(tmp_path / "objects")
    app = demo.client.app
    app.state.video_hub = Hub(store=store)  # type: ignore[attr-defined]
    base = serve_app(app)
    timings: dict[str, float] = {}

    async def scenario() -> dict[str, Any]:
        clerk = Participant(base, tokens["clerk"], [PatternTrack(320, 240), ToneTrack()])
        applicant = Participant(base, tokens["applicant"], [PatternTrack(320, 240), ToneTrack()])
        approver = Participant(base, tokens["approver"])  # watches, does not publish
        await clerk.join()
        await applicant.join()
        await asyncio.wait_for(asyncio.gather(clerk.connected.wait(), applicant.connected.wait()), 20)
        timings["start"] = time.monotonic()
        a_id, b_id = clerk.info["participant"], applicant.info["participant"]
        await wait_until(lambda: clerk.received.get(b_id) is not None and clerk.received[b_id].frames > 5
                         and applicant.received.get(a_id) is not None and applicant.received[a_id].frames > 5)
        # A third participant joins later and receives both.
        await approver.join()
        await wait_until(lambda: all(approver.received.get(p) is not None and approver.received[p].frames > 5
                                     for p in (a_id, b_id)))
        assert {p["role"] for p in approver.people} == {"clerk", "applicant", "approver"}
        assert approver.received[a_id].width == 320 and approver.received[a_id].audio_frames > 0

        await applicant.chat("您好, 经营场所已准备好, 可以开始踏勘")
        await approver.wait_message("chat", text="您好, 经营场所已准备好, 可以开始踏勘")

        # The applicant cannot capture; the approver files a still of the applicant's camera.
        refused = await applicant.post("captures", {"participant": a_id, "material_id": "floor_plans"})
        assert refused.status_code == 403, refused.text
        bad = await approver.post("captures", {"participant": b_id, "material_id": "no_such"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "material_id"
        shot = await approver.post("captures", {"participant": b_id, "material_id": "floor_plans"})
        assert shot.status_code == 201, shot.text

        await applicant.send_file("f1", "卫生管理制度.png", png_bytes(), "hygiene_rules")
        ok = await applicant.wait_message("file_result", id="f1")
        await applicant.send_file("f2", "说明.txt", "不是图片".encode() * 10, "hygiene_rules")
        refused_file = await applicant.wait_message("file_result", id="f2")
        applicant.channel.send(json.dumps({"t": "file", "id": "big", "name": "大.jpg",
                                           "size": 10 * 1024 * 1024 + 1, "material": "floor_plans"}))
        too_big = await applicant.wait_message("error", id="big")
        assert too_big["field"] == "size"

        await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - timings["start"])))
        await approver.close()
        await applicant.close()
        await clerk.close()
        timings["end"] = time.monotonic()
        return {"shot": shot.json(), "file_ok": ok, "file_refused": refused_file}

    out = asyncio.run(scenario())
    assert out["file_ok"]["ok"] is True, out["file_ok"]
    assert out["file_refused"]["ok"] is False and out["file_refused"]["field"] == "file"

    with session_scope(demo.engine) as s:
        pages = scans.list_pages(s, number, SYSTEM)
        recordings = [dict(r) for r in s.execute(sa.select(VideoRecording.__table__)).mappings()]
    shot = next(p for p in pages if p["id"] == out["shot"]["id"])
    assert shot["material_id"] == "floor_plans" and shot["media_type"] == "image/jpeg"
    with Image.open(io.BytesIO(b"".join(store.get(shot["bucket"], shot["key"])))) as img:
        img.load()
        assert img.format == "JPEG" and img.size == (320, 240)
    assert any(p["material_id"] == "hygiene_rules" and p["media_type"] == "image/png" for p in pages)

    # Two publishers → two recordings, each an mp4 with audio and video of the expected length.
    assert len(recordings) == 2
    wall = timings["end"] - timings["start"]
    for rec in recordings:
        path = tmp_path / f"{rec['participant_id']}.mp4"
        path.write_bytes(b"".join(store.get(rec["bucket"], rec["key"])))
        with av.open(str(path)) as c:
            kinds = {st.type for st in c.streams}
            frames = sum(1 for _ in c.decode(video=0))
            duration = c.duration / 1_000_000
        assert kinds == {"video", "audio"}
        assert wall - 1.0 <= duration <= wall + 2.5, (duration, wall)
        assert abs(duration - rec["duration_s"]) < 0.5
        assert frames >= 20 * (wall - 1.0)
    kinds = history_kinds(demo, number)
    assert kinds.count("video_join") == 3 and kinds.count("video_leave") == 3
    for k in ("video_open", "video_chat", "video_capture", "video_file", "page_added",
              "evidence_stored", "video_recording"):
        assert k in kinds, (k, kinds)


def test_remote_inspection_in_the_room_fires_the_transition_and_closes_it(
        sqlite_demo: Demo, serve_app: Any, tmp_path: Path) -> None:
    demo = sqlite_demo
    number = inspection_case(demo)
    room = open_room(demo, number)
    clerk_token, applicant_token = link(demo, room, "clerk", "李强"), link(demo, room, "applicant", "张三")
    store = LocalStore(tmp_path / "objects")
    demo.client.app.state.video_hub = Hub(store=store, watch_seconds=0.2)  # type: ignore[attr-defined]
    base = serve_app(demo.client.app)

    async def scenario() -> dict[str, Any]:
        applicant = Participant(base, applicant_token, [PatternTrack(160, 120), ToneTrack()])
        inspector = Participant(base, clerk_token)
        await applicant.join()
        await inspector.join()
        checklist = inspector.info["checklist"]
        # The clerk in the room invites an expert by link; the applicant may not invite.
        r = await applicant.post("invites", {"role": "expert", "name": "王专家"})
        assert r.status_code == 403, r.text
        r = await inspector.post("invites", {"role": "expert", "name": "王专家"})
        assert r.status_code == 201, r.text
        late_token = r.json()["token"]
        a_id = applicant.info["participant"]
        await wait_until(lambda: inspector.received.get(a_id) is not None and inspector.received[a_id].frames > 10)
        # The applicant is no inspector: the engine refuses, nothing changes.
        r = await applicant.post("inspection", {"results": {e["id"]: True for e in checklist}})
        assert r.status_code == 403, r.text
        r = await inspector.post("inspection", {"results": {e["id"]: True for e in checklist},
                                                "notes": {"rules_posted": "制度已张贴于前台"}})
        assert r.status_code == 200, r.text
        closed = await applicant.wait_message("closed")
        late = Participant(base, late_token)
        try:
            await late.join()
            refused = None
        except Exception as exc:  # noqa: BLE001 - the refusal is what we look at
            refused = exc
        await late.close(leave=False)
        await applicant.close(leave=False)
        await inspector.close(leave=False)
        return {"result": r.json(), "closed": closed, "refused": refused, "checklist": checklist}

    out = asyncio.run(scenario())
    assert [e["id"] for e in out["checklist"]] == ["layout_matches", "facilities_ok", "rules_posted"]
    assert out["result"]["trigger"] == "inspection_passed" and out["result"]["state"] == "review"
    assert out["closed"]["reason"] == "state_left"
    assert getattr(out["refused"], "status", None) == 403
    with session_scope(demo.engine) as s:
        recs = s.execute(sa.select(VideoRecording.__table__)).mappings().all()
        evidence = scans.list_evidence(s, number, SYSTEM)
    assert len(recs) == 1 and [e["kind"] for e in evidence] == ["recording"]
    assert evidence[0]["sha256"] == recs[0]["sha256"]
    kinds = history_kinds(demo, number)
    assert kinds.index("video_recording") > kinds.index("video_join")
    assert "video_close" in kinds


def test_rooms_close_when_the_case_moves_on_when_ended_and_when_idle(
        sqlite_demo: Demo, serve_app: Any, tmp_path: Path) -> None:
    demo = sqlite_demo
    n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")["number"]
    hub = Hub(store=LocalStore(tmp_path / "objects"), watch_seconds=0.2, idle_seconds=0.6)
    demo.client.app.state.video_hub = hub  # type: ignore[attr-defined]
    base = serve_app(demo.client.app)

    def room_row(room_id: str) -> dict[str, Any]:
        rooms_out = demo.client.get(f"/api/v1/cases/{n}/video-rooms", headers=demo.h("王芳")).json()["items"]
        return next(r for r in rooms_out if r["id"] == room_id)

    async def scenario() -> None:
        # 1. Ended by the clerk.
        room = open_room(demo, n, "王芳")
        p = Participant(base, link(demo, room, "applicant", "张三", who="王芳"))
        await p.join()
        await asyncio.wait_for(p.channel_open.wait(), 10)
        r = await p.http.post(f"/api/v1/video/rooms/{room}/close", headers=demo.h("王芳"))
        assert r.status_code == 200
        assert (await p.wait_message("closed"))["reason"] == "ended"
        await p.close(leave=False)
        assert room_row(room)["close_reason"] == "ended"
        # 2. Idle: everybody left, nobody came back.
        room = open_room(demo, n, "王芳")
        assert room_row(room)["status"] == "open"
        p = Participant(base, link(demo, room, "applicant", "张三", who="王芳"))
        await p.join()
        await p.close()
        await wait_until(lambda: room_row(room)["status"] == "closed", timeout=10)
        assert room_row(room)["close_reason"] == "idle"
        # 3. The case leaves the state through the ordinary clerk API while someone is inside.
        room = open_room(demo, n, "王芳")
        p = Participant(base, link(demo, room, "applicant", "张三", who="王芳"))
        await p.join()
        await asyncio.wait_for(p.channel_open.wait(), 10)
        await asyncio.to_thread(demo.fire, "王芳", n, "accept")
        assert (await p.wait_message("closed"))["reason"] == "state_left"
        await p.close(leave=False)
        assert room_row(room)["close_reason"] == "state_left"

    asyncio.run(scenario())
    kinds = history_kinds(demo, n)
    assert kinds.count("video_open") == 3 and kinds.count("video_close") == 3
    assert kinds.count("video_join") == 3 and kinds.count("video_leave") == 3


def test_one_to_many_room_of_six(sqlite_demo: Demo, serve_app: Any, tmp_path: Path) -> None:
    """A clerk and an applicant publish; four more (experts, a remote approver) watch: all six
    are in one room and every viewer receives both publishers."""
    demo = sqlite_demo
    number = inspection_case(demo)
    room = open_room(demo, number)
    tokens = [link(demo, room, "clerk", "李强"), link(demo, room, "applicant", "张三"),
              link(demo, room, "approver", "刘洋", clerk_id=demo.actor("刘洋").id),
              *(link(demo, room, "expert", f"专家{i}") for i in range(3))]
    demo.client.app.state.video_hub = Hub(store=LocalStore(tmp_path / "objects"))  # type: ignore[attr-defined]
    base = serve_app(demo.client.app)

    async def scenario() -> list[int]:
        people = [Participant(base, tokens[0], [PatternTrack(160, 120), ToneTrack()]),
                  Participant(base, tokens[1], [PatternTrack(160, 120), ToneTrack()]),
                  *(Participant(base, t) for t in tokens[2:])]
        for p in people:
            await p.join()
        pubs = [people[0].info["participant"], people[1].info["participant"]]
        await wait_until(lambda: all(
            p.received.get(pub) is not None and p.received[pub].frames > 5
            for p in people for pub in pubs if pub != p.info["participant"]), timeout=40)
        sizes = [len(p.people) for p in people]
        for p in people:
            await p.close()
        return sizes

    assert asyncio.run(scenario()) == [6] * 6
    assert history_kinds(demo, number).count("video_join") == 6


def test_peers_gather_only_the_namespace_address() -> None:
    """The ICE host candidates a peer would offer here: only the private namespace's address."""
    from aioice.ice import get_host_addresses

    from tests.netns import ADDRESS

    assert get_host_addresses(use_ipv4=True, use_ipv6=True) == [ADDRESS]
