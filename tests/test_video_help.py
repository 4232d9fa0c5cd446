"""视频帮办 on SQLite and PostgreSQL, without media: a self-service booth calls its supervising
counter before any case exists; the call is listed for that counter's clerks only, its join links
admit only the booth and those clerks, and its events go to the room's own log, not a history."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from engine.errors import Forbidden
from storage.db import session_scope
from tests.conftest import Demo, origin_of, page_login
from video import help as video_help
from video import links, rooms

BOOTH = "浦东新区企业服务中心政务直办间 1 号自助终端"


def test_a_booth_call_is_the_supervising_counters_alone_and_logs_in_its_room(demo: Demo) -> None:
    history_before = demo.count("history")
    booth, chen, li, zhou = (demo.actor(n) for n in ("自助终端01", "陈静", "李强", "周敏"))
    with session_scope(demo.engine) as s:
        with pytest.raises(Forbidden):  # a staffed counter's clerk is no booth
            video_help.open_call(s, chen)
        room, booth_token = video_help.open_call(s, booth)
        again, _ = video_help.open_call(s, booth)  # pressing the button again rejoins the same call
    assert again["id"] == room["id"]
    assert (room["case_id"], room["number"], room["kind"]) == (None, "", "help")
    assert (room["counter_id"], room["booth_id"]) == ("pd-zhengwu", "pd-zizhu-01")

    with session_scope(demo.engine) as s:
        calls = video_help.waiting(s, chen)
        assert [(c["id"], c["booth"], c["booth_in"], c["answered"]) for c in calls] == [
            (room["id"], BOOTH, False, False)]
        # Other counters' clerks (Qingdao; a Pudong department's approver) do not see it.
        assert video_help.waiting(s, li) == [] and video_help.waiting(s, zhou) == []
        with pytest.raises(Forbidden) as refused:
            video_help.answer(s, room["id"], li)
        assert refused.value.extra["missing"] == ["counter"]
        clerk_token = video_help.answer(s, room["id"], chen)
        # No one else is invited into a booth's call, not even as an expert.
        with pytest.raises(Forbidden):
            rooms.check_link_request(s, room, "expert", None, chen)

    with session_scope(demo.engine) as s:
        # The two sides are admitted; they join and leave.
        pids = {}
        for token in (booth_token, clerk_token):
            claim = links.verify(token)
            assert rooms.admit(s, claim)["id"] == room["id"]
            pids[claim.role], _ = rooms.record_join(s, room, claim)
        # A validly signed link for a clerk of another counter, one naming no side, one of a case.
        for forged in (links.issue("", room["id"], "clerk", "李强", li.id)[0],
                       links.issue("", room["id"], "applicant", "张三", None)[0],
                       links.issue("2026-0001", room["id"], "clerk", "陈静", chen.id)[0]):
            with pytest.raises(Forbidden):
                rooms.admit(s, links.verify(forged))
    with session_scope(demo.engine) as s:
        assert [(c["booth_in"], c["answered"]) for c in video_help.waiting(s, chen)] == [(True, True)]
        rooms.log(s, room["id"], "video_chat", chen, {"text": "您好, 请把身份证放在读卡区"})
        rooms.record_leave(s, room["id"], pids["clerk"], chen, "left")
        assert rooms.close(s, room["id"], "ended", chen)
        assert video_help.waiting(s, chen) == []
        log = video_help.room_log(s, room["id"])
        fresh, _ = video_help.open_call(s, booth)  # after the call ended the button starts a new one
    assert [e["kind"] for e in log] == ["video_open", "video_join", "video_join", "video_chat", "video_leave",
                                        "video_close"]
    assert [e["actor_name"] for e in log[3:]] == ["陈静", "陈静", "陈静"]
    assert fresh["id"] != room["id"]
    assert demo.count("history") == history_before  # no case history was written
    assert demo.count("video_recordings") == 0


def test_the_booth_button_and_the_clerks_list_on_the_pages(demo: Demo) -> None:
    booth = TestClient(demo.client.app, base_url="http://testserver")
    booth.headers["Origin"] = origin_of(booth)
    page_login(booth, demo.tokens["自助终端01"], next_path="/kiosk")
    home = booth.get("/kiosk")
    assert 'id="help-call"' in home.text and "视频帮办" in home.text
    csrf = home.text.split('data-csrf="')[1].split('"')[0]
    called = booth.post("/kiosk/help", data={"csrf": csrf}, follow_redirects=False)
    assert called.status_code == 303 and called.headers["location"].startswith("/video/join?t=")
    room_page = booth.get(called.headers["location"])
    assert room_page.status_code == 200 and "云见面 · 视频帮办" in room_page.text
    assert "办件" not in room_page.text and 'href="/kiosk"' in room_page.text
    assert 'id="invite-box"' not in room_page.text and 'id="capture-box"' not in room_page.text

    clerks = {}
    for who in ("陈静", "李强"):
        c = clerks[who] = TestClient(demo.client.app, base_url="http://testserver")
        c.headers["Origin"] = origin_of(c)
        page_login(c, demo.tokens[who])
    listed = clerks["陈静"].get("/ui/help")
    assert listed.status_code == 200 and BOOTH in listed.text and "等待接听" not in listed.text  # not yet in
    assert "暂无等待接听的呼叫" in clerks["李强"].get("/ui/help").text
    action = re.search(r'action="(/ui/help/[0-9a-f]+/answer)"', listed.text)
    assert action is not None
    csrf = listed.text.split('name="csrf" value="')[-1].split('"')[0]
    answered = clerks["陈静"].post(action.group(1), data={"csrf": csrf}, follow_redirects=False)
    assert answered.status_code == 303 and answered.headers["location"].startswith("/video/join?t=")
    clerk_page = clerks["陈静"].get(answered.headers["location"])
    assert clerk_page.status_code == 200 and "窗口工作人员 · 陈静" in clerk_page.text
    assert 'href="/ui/help"' in clerk_page.text
    other = clerks["李强"]  # the form token of his own page (every page has the sign-out form)
    csrf_li = other.get("/ui/help").text.split('name="csrf" value="')[1].split('"')[0]
    assert other.post(action.group(1), data={"csrf": csrf_li}, follow_redirects=False).status_code == 403
