"""Pages and dashboard data without a browser, on SQLite and PostgreSQL: scoping, CSRF, the figures."""

from __future__ import annotations

import io
import re
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import ALL_FGS, ALL_GGCS, Demo, page_login
from fastapi.testclient import TestClient
from PIL import Image

from core.settings import ROOT, get_settings
from engine import dashboard
from engine.workdays import DEFAULT as CAL
from storage.db import session_scope


def _login(demo: Demo, who: str) -> tuple[TestClient, str]:
    client = TestClient(demo.client.app, headers={"Origin": "http://testserver"})
    r = page_login(client, demo.tokens[who], "/ui/designer")
    assert r.status_code == 303 and "HttpOnly" in r.headers["set-cookie"]
    assert "SameSite=strict" in r.headers["set-cookie"]
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/ui/designer").text)
    assert csrf
    return client, csrf.group(1)


def test_supervisors_see_only_their_regions(demo: Demo) -> None:
    jn = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    ns = demo.create("黄丽", "GGCSWSXK", {})
    zhao, _ = _login(demo, "赵督查")
    qian, _ = _login(demo, "钱督查")
    d = zhao.get("/api/v1/dashboard").json()
    assert d["open_total"] == 1 and set(d["open_by"]["counter"]) == {"jn-kuayu"}
    assert "ns-yunzhidao" not in d["counters"]
    d = qian.get("/api/v1/dashboard").json()
    assert d["open_total"] == 1 and set(d["open_by"]["counter"]) == {"ns-yunzhidao"}
    assert set(d["counters"]) == {"ns-yunzhidao"}
    for params in ({"region": "370100"}, {"counter": "jn-kuayu"}):
        r = qian.get("/api/v1/dashboard", params=params)
        assert r.status_code == 403 and r.json()["missing"] == ["region"]
    # The same data endpoint with a bearer token, and the clerk JSON API.
    h = demo.h("钱督查")
    assert demo.client.get("/api/v1/dashboard", params={"region": "370100"}, headers=h).status_code == 403
    assert demo.client.get(f"/api/v1/cases/{jn['number']}", headers=h).status_code == 403
    assert demo.client.get(f"/api/v1/cases/{jn['number']}/history", headers=h).status_code == 403
    assert demo.client.get("/api/v1/cases", params={"counter": "jn-kuayu"}, headers=h).status_code == 403
    assert demo.client.get(f"/api/v1/cases/{ns['number']}", headers=h).status_code == 200
    assert demo.client.get(f"/api/v1/cases/{ns['number']}", headers=demo.h("赵督查")).status_code == 403
    # And the pages.
    assert qian.get(f"/ui/cases/{jn['number']}").status_code == 403
    assert qian.get(f"/ui/cases/{jn['number']}/diagram.svg").status_code == 403
    assert qian.get("/ui/queue", params={"counter": "jn-kuayu"}).status_code == 403
    assert zhao.get(f"/ui/cases/{jn['number']}").status_code == 200
    # Clerks get no dashboard; nobody gets it without a session or token.
    wang, _ = _login(demo, "王芳")
    assert wang.get("/api/v1/dashboard").status_code == 403
    assert TestClient(demo.client.app).get("/api/v1/dashboard").status_code == 401


def test_deadline_status_stuck_handoff_and_workload(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")
    out = demo.fire("王芳", case["number"], "forward", case["version"])  # hand-off to Qingdao
    h = demo.h("李强", **{"If-Match": f'"{out["version"]}"'})
    claimed = demo.client.post(f"/api/v1/cases/{case['number']}/claim", headers=h).json()  # first event there
    with session_scope(demo.engine) as s:
        assert [(w["clerk"], w["open"]) for w in dashboard.dashboard(s, demo.actor("赵督查"))["workloads"]] == [
            ("李强", 1)]
    demo.fire("李强", case["number"], "approve", claimed["version"])
    due = date.fromisoformat(out["deadlines"]["promised"])  # counted from 受理 (the forward)
    actor = demo.actor("赵督查")
    with session_scope(demo.engine) as s:
        now = dashboard.dashboard(s, actor)
        assert now["deadline"]["正常"] + now["deadline"]["预警"] == 1
        assert [(w["clerk"], w["open"]) for w in now["workloads"]] == [("(未分派)", 1)]  # the next step
        [pair] = now["handoffs"]
        assert (pair["from"], pair["to"], pair["count"], pair["pending"]) == ("370100", "370211", 1, 0)
        assert pair["avg_hours"] is not None
        assert sum(d["received"] for d in now["throughput"]) == 1
        late = dashboard.dashboard(s, actor, today=due + timedelta(days=1))
        assert late["deadline"]["逾期"] == 1
        assert late["at_risk"][0]["number"] == case["number"] and late["at_risk"][0]["deadline"] == "逾期"
        assert late["at_risk"][0]["prefect_url"] is None  # no Prefect UI configured: no link
        later = dashboard.dashboard(s, actor, today=CAL.add(due, 10))
        assert later["stuck"]["count"] == 1 and later["stuck"]["cases"][0]["number"] == case["number"]
        other = dashboard.dashboard(s, actor, item="GGCSWSXK")
        assert other["open_total"] == 0


def test_page_posts_need_the_csrf_token_and_change_nothing_without_it(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    wang, csrf = _login(demo, "王芳")
    url = f"/ui/cases/{case['number']}/triggers/forward"
    for bad in ("", "0" * 64):
        r = wang.post(url, data={"csrf": bad, "version": "1"})
        assert r.status_code in (400, 422)
    assert demo.count("history") == 1
    r = wang.post(url, data={"csrf": csrf, "version": "9"})  # stale version: shown, not applied
    assert r.status_code == 412 and "办件版本为 1" in r.text
    r = wang.post(url, data={"csrf": csrf, "version": "1"}, follow_redirects=False)
    assert r.status_code == 303
    assert demo.client.get(f"/api/v1/cases/{case['number']}", headers=demo.h("王芳")).json()["version"] == 2


def test_login_rejects_bad_tokens_and_redirects_safely(demo: Demo) -> None:
    client = TestClient(demo.client.app)
    r = page_login(client, "tb_nope")
    assert r.status_code == 401 and "令牌无效" in r.text and "tb_session" not in r.headers.get("set-cookie", "")
    r = page_login(client, demo.tokens["王芳"], "//evil.example/")
    assert r.headers["location"] == "/ui/"
    assert client.get("/ui/queue", follow_redirects=False).status_code == 200


def test_intake_form_reports_fields_and_writes_nothing_on_bad_input(demo: Demo) -> None:
    wang, csrf = _login(demo, "王芳")
    r = wang.post("/ui/cases/new", data={"csrf": csrf, "item": "FGSFZRBG", "name": "某公司",
                                         "id_number": "有空格 x"})
    assert r.status_code == 422 and "证件号码" in r.text
    r = wang.post("/ui/cases/new", data={"csrf": csrf, "item": "FGSFZRBG", "name": "某公司",
                                         "competent_region": "999999"})
    assert r.status_code == 422 and "competent_region" in r.text
    assert demo.count("cases") == 0


def test_progress_page_is_rate_limited_like_the_api(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    client = TestClient(demo.client.app)
    r = client.post("/progress", data={"number": case["number"], "code": case["query_code"]})
    assert r.status_code == 200 and "已接件" in r.text and "测试申请人" not in r.text
    statuses = [client.post("/progress", data={"number": case["number"], "code": "XXXXXXXX"}).status_code
                for _ in range(40)]
    assert statuses[0] == 404 and statuses[-1] == 429
    # The page and the API share one budget per client.
    assert client.get(f"/api/v1/progress/{case['number']}", params={"code": case["query_code"]}).status_code == 429


def test_a_progress_lookup_counts_once_against_the_client(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup's POST counts it; the GET its 303 leads to shows the case without counting it
    again (F5 there is a lookup of its own, and counts). A refusal is a 303 too, and its GET
    counts nothing."""
    monkeypatch.setattr(get_settings(), "progress_rate_per_minute", 4)
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    client = TestClient(demo.client.app)
    form = {"number": case["number"], "code": case["query_code"]}
    shown = [client.post("/progress", data=form) for _ in range(3)]
    assert [r.status_code for r in shown] == [200] * 3 and all("已接件" in r.text for r in shown)
    assert all(r.history[0].status_code == 303 for r in shown)
    assert client.get("/progress", params={"number": case["number"]}).status_code == 200  # F5: the 4th
    refused = client.post("/progress", data=form)
    assert refused.status_code == 429 and refused.history[0].status_code == 303 and "查询过于频繁" in refused.text
    assert int(refused.headers["retry-after"]) > 0


def test_designer_check_reports_line_and_column(demo: Demo) -> None:
    sun, csrf = _login(demo, "孙设计")
    r = sun.post("/ui/designer/check", data={"csrf": csrf, "source": "code: X\nversion: zero\n"})
    assert r.status_code == 422 and re.search(r"<code>\d+:\d+</code>", r.text)
    source = (ROOT / "catalog" / "items" / "fgs_fuzeren_biangeng.yaml").read_text(encoding="utf-8")
    r = sun.post("/ui/designer/check", data={"csrf": csrf, "source": source})
    assert r.status_code == 200 and "定义有效" in r.text
    assert sun.get("/ui/designer/items/FGSFZRBG", params={"version": 4}).status_code == 200
    assert sun.get("/ui/designer/items/NOPE").status_code == 404


def test_case_page_uploads_scans_and_shows_thumbnails(demo: Demo, tmp_path: Path) -> None:
    from api.pages import scans_ui
    from storage.object_local import LocalStore

    demo.client.app.dependency_overrides[scans_ui.object_store] = lambda: LocalStore(tmp_path / "objects")
    case = demo.create("王芳", "FGSFZRBG", {})
    wang, csrf = _login(demo, "王芳")
    png = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(png, "PNG")
    url = f"/ui/cases/{case['number']}/materials/application/pages"
    r = wang.post(url, data={"csrf": csrf, "version": "1"},
                  files={"file": ("申请书.png", png.getvalue(), "image/png")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    r = wang.post(url, data={"csrf": csrf, "version": "1"},  # stale: refused, shown on the page
                  files={"file": ("x.png", png.getvalue(), "image/png")})
    assert r.status_code == 412
    r = wang.post(url, data={"csrf": csrf, "version": "2"},
                  files={"file": ("x.txt", b"not an image", "text/plain")})
    assert r.status_code in (413, 422) and 'class="error"' in r.text
    view = demo.client.get(f"/api/v1/cases/{case['number']}", headers=demo.h("王芳")).json()
    assert view["version"] == 2 and view["materials"][0]["status"] == "received"
    for _ in range(100):  # thumbnails are made after the commit, in the background
        page = wang.get(f"/ui/cases/{case['number']}").text
        thumb = re.search(r'src="(/ui/cases/[^"]+/thumbnail)"', page)
        if thumb:
            break
        time.sleep(0.05)
    assert thumb, "thumbnail never appeared"
    r = wang.get(thumb.group(1))
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    qian, _ = _login(demo, "钱督查")
    assert qian.get(thumb.group(1)).status_code == 403


def test_a_stopped_clock_is_not_at_risk(demo: Demo) -> None:
    case = demo.create("王芳", "CBWLSXK", {})
    demo.fire("王芳", case["number"], "request_supplement", case["version"], comment="请补齐经营场所使用权证明")
    due = date.fromisoformat(case["deadlines"]["supplement_notice"])  # before 受理, the period that runs
    with session_scope(demo.engine) as s:
        late = dashboard.dashboard(s, demo.actor("赵督查"), today=due + timedelta(days=1))
    assert late["deadline"] == {"正常": 1, "预警": 0, "逾期": 0} and late["at_risk"] == []
    assert late["open_by"]["state"] == {"补齐补正": 1}


def test_video_step_opens_a_room_from_the_case_page(demo: Demo) -> None:
    case = demo.create("黄丽", "GGCSWSXK", {m: "received" for m in (
        "application_form", "legal_rep_id", "floor_plans", "hygiene_report", "hygiene_rules")})
    huang, csrf = _login(demo, "黄丽")
    assert 'id="video-open"' not in huang.get(f"/ui/cases/{case['number']}").text  # 收件: no video step
    out = demo.fire("黄丽", case["number"], "accept", case["version"])
    out = demo.fire("黄丽", case["number"], "start_inspection", out["version"])
    assert out["state"]["video"] == "inspection"
    assert 'id="video-open"' in huang.get(f"/ui/cases/{case['number']}").text
    r = huang.post(f"/ui/cases/{case['number']}/video", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/video/join?t=")
    qian, _ = _login(demo, "钱督查")  # a supervisor watches, but does not open rooms
    assert 'id="video-open"' not in qian.get(f"/ui/cases/{case['number']}").text


def test_a_supervisor_cannot_reassign_outside_their_regions(demo: Demo) -> None:
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS)
    out = demo.fire("王芳", case["number"], "accept", case["version"])
    body = {"counter_id": "jn-kuayu", "clerk_id": demo.actor("刘洋").id}  # the review step, to the reviewer
    v = {"If-Match": f'"{out["version"]}"'}
    r = demo.client.post(f"/api/v1/cases/{case['number']}/assignee", json=body, headers=demo.h("钱督查", **v))
    assert r.status_code == 403 and r.json()["missing"] == ["region"]
    r = demo.client.post(f"/api/v1/cases/{case['number']}/assignee", json=body, headers=demo.h("赵督查", **v))
    assert r.status_code == 200 and r.json()["assignees"]["jn-kuayu"] == demo.actor("刘洋").id
