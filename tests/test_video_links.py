"""Join links bound to a clerk only for clerks of the counters a case is routed through: a clerk
link lets its holder act in the room as that clerk (captures, the checklist)."""

from __future__ import annotations

from tests.conftest import Demo
from tests.test_video_media import inspection_case, open_room
from tests.test_video_rooms import OFFER
from video import links


def issue(demo: Demo, room: str, role: str, who: str, **extra: object) -> tuple[int, dict]:
    r = demo.client.post(f"/api/v1/video/rooms/{room}/links", headers=demo.h("李强"),
                         json={"role": role, "name": who, **extra})
    return r.status_code, r.json()


def test_clerk_links_only_for_clerks_of_the_case_counters(demo: Demo) -> None:
    # Taken in Jinan (王芳, 刘洋), handled in Qingdao (李强), now in 现场踏勘; 陈静 (Pudong) and 吴磊
    # (Pudong market supervision) have nothing to do with it.
    number = inspection_case(demo)
    room = open_room(demo, number)
    for role, who in (("clerk", "陈静"), ("approver", "吴磊"), ("expert", "陈静")):
        status, problem = issue(demo, room, role, who, clerk_id=demo.actor(who).id)
        assert status == 403, problem
        assert problem["missing"] == ["counter"] and "未办理过该办件" in problem["detail"] and who in problem["detail"]
    # The companion at the intake counter, the holding counter's own clerks, and guests: as before.
    for role, who, extra in (("clerk", "王芳", {"clerk_id": demo.actor("王芳").id}),
                             ("approver", "刘洋", {"clerk_id": demo.actor("刘洋").id}),
                             ("clerk", "李强", {}),
                             ("expert", "陈静", {}),
                             ("applicant", "张三", {})):
        status, body = issue(demo, room, role, who, **extra)
        assert status == 201, body
    # A link for an outsider signed some other way (or before issuing checked) does not get in.
    outsider, _ = links.issue(number, room, "clerk", "陈静", demo.actor("陈静").id)
    r = demo.client.post("/api/v1/video/join", json={"token": outsider, **OFFER})
    assert r.status_code == 403 and r.json()["missing"] == ["counter"]
    assert demo.client.get(f"/video/join?t={outsider}").status_code == 403
    assert demo.count("video_participants") == 0
