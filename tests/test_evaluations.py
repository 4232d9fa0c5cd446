"""好差评: 一事一评 with the query code at 办结, 一次一评 at the window's pad, one rating per case
and channel, reasons for a 差评, the rectification due in working days, 回访, 申诉复核 by the region
above, the supervisor's figures and the CSV export (SQLite and PG)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo, origin_of, page_login
from fastapi.testclient import TestClient

from core import clock
from core.settings import get_settings
from engine.actors import add_clerk
from engine.dashboard import set_supervised_regions
from engine.rectification import regions_above
from storage.db import session_scope
from storage.tables import T_CASE, Counter, Region

BEIJING = ZoneInfo("Asia/Shanghai")
URL = "/api/v1/evaluations"
PAD = "浦东综合窗口评价器"  # the window's evaluation pad (its own account, role pad)


@pytest.fixture(autouse=True)
def _generous_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "progress_rate_per_minute", 1000)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def finished_case(demo: Demo) -> dict:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    with demo.engine.begin() as conn:  # 办结 is the lifecycle's (tested there); here only its mark counts
        conn.execute(sa.update(T_CASE).where(T_CASE.c.number == case["number"]).values(finished_at=clock.now()))
    return case


def rate(demo: Demo, case: dict, level: int, **over) -> object:
    return demo.client.post(URL, json={"channel": "case", "number": case["number"],
                                       "query_code": case["query_code"], "level": level, **over})


def test_a_case_is_rated_once_with_its_query_code_and_only_when_finished(demo: Demo) -> None:
    open_case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    early = rate(demo, open_case, 5)
    assert early.status_code == 409 and "办结" in early.json()["detail"]
    case = finished_case(demo)
    wrong = rate(demo, case, 5, query_code="WRONG12345")
    assert wrong.status_code == 404
    no_reason = rate(demo, case, 2)
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reasons"
    unknown = rate(demo, case, 2, reasons=["bogus"])
    assert unknown.status_code == 422
    good = rate(demo, case, 4)
    assert good.status_code == 201, good.text
    assert good.json()["level_label"] == "满意" and good.json()["rectification_id"] is None
    twice = rate(demo, case, 1, reasons=["slow"])
    assert twice.status_code == 409
    assert demo.count("evaluations") == 1 and demo.count("rectifications") == 0


def test_window_pad_rates_the_called_ticket_only(demo: Demo) -> None:
    ticket = demo.client.post("/api/v1/tickets", json={"counter": "pd-zhengwu"}).json()
    body = {"channel": "window", "ticket": ticket["id"], "level": 5}
    anonymous = demo.client.post(URL, json=body)
    assert anonymous.status_code == 422 and anonymous.json()["errors"][0]["field"] == "channel"
    not_called = demo.client.post(URL, json=body, headers=demo.h(PAD))
    assert not_called.status_code == 403
    demo.client.post("/api/v1/tickets/call-next", headers=demo.h("陈静"))
    other_window = demo.client.post(URL, json=body, headers=demo.h("李强"))
    assert other_window.status_code == 403
    ok = demo.client.post(URL, json=body, headers=demo.h(PAD))
    assert ok.status_code == 201, ok.text
    assert ok.json()["channel_label"].startswith("一次一评")
    assert demo.client.post(URL, json=body, headers=demo.h(PAD)).status_code == 409


def test_the_clerk_who_served_a_visit_cannot_rate_it(demo: Demo) -> None:
    ticket = demo.client.post("/api/v1/tickets", json={"counter": "pd-zhengwu"}).json()
    demo.client.post("/api/v1/tickets/call-next", headers=demo.h("陈静"))
    own = demo.client.post(URL, json={"channel": "window", "ticket": ticket["id"], "level": 5},
                           headers=demo.h("陈静"))
    assert own.status_code == 403, own.text
    assert "不能评价自己" in own.json()["detail"] and own.json()["missing"] == ["role:pad"]
    page = TestClient(demo.client.app, base_url=str(demo.client.base_url))
    assert page_login(page, demo.tokens["陈静"], "/ui/hall/pad").status_code == 303
    shown = page.get("/ui/hall/pad")
    assert shown.status_code == 403 and "窗口评价器账号" in shown.text and 'id="pad-form"' not in shown.text
    assert demo.count("evaluations") == 0


def test_a_skipped_ticket_or_one_of_another_day_is_not_rated(demo: Demo) -> None:
    with clock.frozen(at("2026-12-07 10:00")):
        served = demo.client.post("/api/v1/tickets", json={"counter": "pd-zhengwu"}).json()
        gone = demo.client.post("/api/v1/tickets", json={"counter": "pd-zhengwu"}).json()
        demo.client.post("/api/v1/tickets/call-next", headers=demo.h("陈静"))
        demo.client.post("/api/v1/tickets/call-next", headers=demo.h("陈静"))
        demo.client.post(f"/api/v1/tickets/{gone['id']}/finish", json={"skipped": True}, headers=demo.h("陈静"))
        skipped = demo.client.post(URL, json={"channel": "window", "ticket": gone["id"], "level": 5},
                                   headers=demo.h(PAD))
        assert skipped.status_code == 409 and "过号" in skipped.json()["detail"]
        assert skipped.json()["field"] == "ticket"
    with clock.frozen(at("2026-12-08 09:00")):
        late = demo.client.post(URL, json={"channel": "window", "ticket": served["id"], "level": 5},
                                headers=demo.h(PAD))
        assert late.status_code == 409 and "2026-12-07" in late.json()["detail"]
        assert late.json()["field"] == "ticket"
    assert demo.count("evaluations") == 0


def test_the_pad_offers_the_last_served_visit_nobody_rated(demo: Demo) -> None:
    pad = TestClient(demo.client.app, base_url=str(demo.client.base_url))
    assert page_login(pad, demo.tokens[PAD], "/ui/hall/pad").status_code == 303
    first = demo.client.post("/api/v1/tickets", json={"counter": "pd-zhengwu"}).json()
    second = demo.client.post("/api/v1/tickets", json={"counter": "pd-zhengwu"}).json()
    demo.client.post("/api/v1/tickets/call-next", headers=demo.h("陈静"))
    assert first["number"] in pad.get("/ui/hall/pad").text
    rated = demo.client.post(URL, json={"channel": "window", "ticket": first["id"], "level": 5}, headers=demo.h(PAD))
    assert rated.status_code == 201
    assert "尚未叫号" in pad.get("/ui/hall/pad").text  # the rated visit is not offered again
    demo.client.post("/api/v1/tickets/call-next", headers=demo.h("陈静"))
    assert second["number"] in pad.get("/ui/hall/pad").text
    demo.client.post(f"/api/v1/tickets/{second['id']}/finish", json={"skipped": True}, headers=demo.h("陈静"))
    assert "尚未叫号" in pad.get("/ui/hall/pad").text  # nor a 过号


def _city_supervisor(demo: Demo) -> None:
    """孙市督查, a supervisor of 上海市 (310000): the level above 浦东新区's counters."""
    with session_scope(demo.engine) as s:
        s.add(Region(code="310000", name="上海市"))
        s.flush()
        clerk, token = add_clerk(s, "孙市督查", None, ["supervisor"], 30)
        set_supervised_regions(s, clerk, ["310000"])
    demo.tokens["孙市督查"] = token


def test_a_bad_rating_is_rectified_followed_up_appealed_and_counted(demo: Demo) -> None:
    _city_supervisor(demo)
    with clock.frozen(at("2026-12-04 10:00")):  # a Friday: five working days → the next Friday
        case = finished_case(demo)
        bad = rate(demo, case, 1, reasons=["attitude", "many_trips"], text="跑了三次")
        assert bad.status_code == 201, bad.text
        rid = bad.json()["rectification_id"]
        rect = demo.client.get(f"/api/v1/rectifications/{rid}", headers=demo.h("赵督查")).json()
        assert rect["status"] == "open" and rect["due"] == "2026-12-11" and rect["overdue"] is False
        clerk_try = demo.client.post(f"/api/v1/rectifications/{rid}/done", json={"action": "x"},
                                     headers=demo.h("陈静"))
        assert clerk_try.status_code == 403
        early_visit = demo.client.post(f"/api/v1/rectifications/{rid}/visit",
                                       json={"contacted": True, "verdict": "satisfied"}, headers=demo.h("赵督查"))
        assert early_visit.status_code == 409
    with clock.frozen(at("2026-12-14 10:00")):
        figures = demo.client.get(f"{URL}/summary", headers=demo.h("赵督查")).json()["items"]
        row = next(f for f in figures if f["key"] == "pd-zhengwu")
        assert row["bad"] == 1 and row["bad_open"] == 1 and row["bad_overdue"] == 1 and row["rate"] == 0
        done = demo.client.post(f"/api/v1/rectifications/{rid}/done", json={"action": "约谈窗口人员, 一次告知"},
                                headers=demo.h("赵督查"))
        assert done.status_code == 200 and done.json()["status"] == "done"
        visit = demo.client.post(f"/api/v1/rectifications/{rid}/visit",
                                 json={"contacted": True, "note": "电话回访", "verdict": "satisfied"},
                                 headers=demo.h("赵督查"))
        assert visit.json()["visit_verdict"] == "satisfied"
        outsider = demo.client.post(f"/api/v1/rectifications/{rid}/appeal", json={"reason": "误评"},
                                    headers=demo.h("李强"))
        assert outsider.status_code == 403
        appeal = demo.client.post(f"/api/v1/rectifications/{rid}/appeal",
                                  json={"reason": "申请人误将他处办理的经历评在本窗口"}, headers=demo.h("陈静"))
        assert appeal.status_code == 200 and appeal.json()["status"] == "appealed"
        same_region = demo.client.post(f"/api/v1/rectifications/{rid}/decision", json={"upheld": True},
                                       headers=demo.h("赵督查"))
        assert same_region.status_code == 403  # not the region above
        decided = demo.client.post(f"/api/v1/rectifications/{rid}/decision", json={"upheld": True, "note": "核实"},
                                   headers=demo.h("孙市督查"))
        assert decided.status_code == 200 and decided.json()["status"] == "annulled"
        figures = demo.client.get(f"{URL}/summary", headers=demo.h("赵督查")).json()["items"]
        row = next(f for f in figures if f["key"] == "pd-zhengwu")
        assert row["bad"] == 0 and row["annulled"] == 1 and row["count"] == 0
        by_clerk = demo.client.get(f"{URL}/summary", params={"by": "clerk"}, headers=demo.h("赵督查")).json()
        assert by_clerk["items"][0]["name"] == "陈静"
        csv = demo.client.get(f"{URL}/export.csv", headers=demo.h("赵督查"))
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.lstrip("\ufeff").splitlines()
        assert lines[0].startswith("办件编号,事项编码,事项版本,部门,区划,窗口人员")
        assert case["number"] in lines[1] and "非常不满意" in lines[1] and "310115" in lines[1]
        assert "陈静" in lines[1] and "+08:00" in lines[1]
        assert lines[0].endswith(",申诉撤销") and lines[1].endswith(",是")  # annulled on appeal, and marked
        clerk = demo.client.get(f"{URL}/export.csv", headers=demo.h("陈静"))
        assert clerk.status_code == 403 and clerk.json()["missing"] == ["role:supervisor"]
        other = demo.client.get(f"{URL}/export.csv", headers=demo.h("钱督查")).text.lstrip("\ufeff")
        assert len(other.splitlines()) == 1  # another region's supervisor sees none of them


def test_the_window_pad_page_rates_the_last_call_with_prg(demo: Demo) -> None:
    pad = TestClient(demo.client.app, base_url=str(demo.client.base_url))
    assert page_login(pad, demo.tokens[PAD], "/ui/hall/pad").status_code == 303
    assert "尚未叫号" in pad.get("/ui/hall/pad").text
    demo.client.post("/api/v1/tickets", json={"counter": "pd-zhengwu"})
    demo.client.post("/api/v1/tickets/call-next", headers=demo.h("陈静"))
    page = pad.get("/ui/hall/pad").text
    assert "A001" in page and "非常不满意" in page and "服务态度差" in page
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    ticket = re.search(r'name="ticket" value="(\d+)"', page).group(1)
    origin = {"Origin": origin_of(pad)}
    missing = pad.post("/ui/hall/pad", data={"csrf": csrf, "ticket": ticket, "level": "2"}, headers=origin,
                       follow_redirects=False)
    assert missing.status_code == 422 and "原因" in missing.text
    ok = pad.post("/ui/hall/pad", data={"csrf": csrf, "ticket": ticket, "level": "2", "reasons": ["slow"]},
                  headers=origin, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/hall/pad?done=2"
    assert "感谢您的评价: 不满意" in pad.get(ok.headers["location"]).text
    again = pad.post("/ui/hall/pad", data={"csrf": csrf, "ticket": ticket, "level": "5"}, headers=origin,
                     follow_redirects=False)
    assert again.status_code == 409  # one rating per visit
    assert demo.count("rectifications") == 1


def test_a_rectification_is_read_only_by_those_the_listing_shows_it_to(demo: Demo) -> None:
    _city_supervisor(demo)
    case = finished_case(demo)
    rid = rate(demo, case, 2, reasons=["slow"]).json()["rectification_id"]
    path = f"/api/v1/rectifications/{rid}"
    assert demo.client.get(path, headers=demo.h("陈静")).status_code == 200  # the rated window
    assert demo.client.get(path, headers=demo.h("赵督查")).status_code == 200  # its region's supervisor
    for outsider in ("李强", "钱督查", "孙市督查"):  # another window, another region, above but no appeal
        r = demo.client.get(path, headers=demo.h(outsider))
        assert r.status_code == 403, (outsider, r.text)
        assert r.json()["type"] == "/problems/forbidden" and r.json()["missing"] == ["region"]
    demo.client.post(f"{path}/appeal", json={"reason": "误评"}, headers=demo.h("陈静"))
    assert demo.client.get(path, headers=demo.h("孙市督查")).json()["status"] == "appealed"  # now theirs to decide
    missing = demo.client.get("/api/v1/rectifications/999999", headers=demo.h("赵督查"))
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/not-found"


def test_an_appeal_of_a_province_level_counter_is_decided_at_the_national_level(demo: Demo) -> None:
    assert regions_above("370211") == {"370200", "370000", "000000"}
    assert regions_above("370211001000") == {"370211", "370200", "370000", "000000"}
    assert regions_above("370000") == {"000000"} and regions_above("000000") == set()
    with session_scope(demo.engine) as s:
        s.add_all([Region(code="000000", name="全国"), Region(code="370000", name="山东省")])
        s.flush()
        s.add(Counter(id="sd-zhongxin", name="山东省政务服务中心综合窗口", region_code="370000"))
        s.flush()
        for name, counter, roles, regions in (("省中心窗口", "sd-zhongxin", ["clerk"], []),
                                              ("省中心评价器", "sd-zhongxin", ["pad"], []),
                                              ("省督查", None, ["supervisor"], ["370000"]),
                                              ("国家督查", None, ["supervisor"], ["000000"])):
            clerk, demo.tokens[name] = add_clerk(s, name, counter, roles, 30)
            set_supervised_regions(s, clerk, regions)
    ticket = demo.client.post("/api/v1/tickets", json={"counter": "sd-zhongxin"}).json()
    demo.client.post("/api/v1/tickets/call-next", headers=demo.h("省中心窗口"))
    bad = demo.client.post(URL, json={"channel": "window", "ticket": ticket["id"], "level": 1,
                                      "reasons": ["attitude"]}, headers=demo.h("省中心评价器"))
    assert bad.status_code == 201, bad.text
    path = f"/api/v1/rectifications/{bad.json()['rectification_id']}"
    appeal = demo.client.post(f"{path}/appeal", json={"reason": "评价器误触"}, headers=demo.h("省中心窗口"))
    assert appeal.status_code == 200, appeal.text
    own = demo.client.post(f"{path}/decision", json={"upheld": True}, headers=demo.h("省督查"))
    assert own.status_code == 403  # the province's own supervisor is not the level above
    assert demo.client.get(path, headers=demo.h("国家督查")).status_code == 200
    decided = demo.client.post(f"{path}/decision", json={"upheld": True, "note": "核实为误触"},
                               headers=demo.h("国家督查"))
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "annulled"


def test_only_supervisors_export_and_the_export_marks_annulled_ratings(demo: Demo) -> None:
    kept = finished_case(demo)
    assert rate(demo, kept, 4).status_code == 201
    for who in ("陈静", PAD):
        refused = demo.client.get(f"{URL}/export.csv", headers=demo.h(who))
        assert refused.status_code == 403 and refused.json()["type"] == "/problems/forbidden"
    page = TestClient(demo.client.app, base_url=str(demo.client.base_url))
    assert page_login(page, demo.tokens["陈静"], "/ui/hall/ratings").status_code == 303
    assert 'id="export"' not in page.get("/ui/hall/ratings").text
    assert page.get("/ui/hall/ratings/export.csv").status_code == 403
    rows = demo.client.get(f"{URL}/export.csv", headers=demo.h("赵督查")).text.lstrip("\ufeff").splitlines()
    assert len(rows) == 2 and kept["number"] in rows[1]
    assert rows[1].split(",")[-1] == "否"


def _hidden(html: str, form_id: str) -> dict[str, str]:
    chunk = html[html.index(f'id="{form_id}"'):]
    chunk = chunk[:chunk.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', chunk))


def test_a_rectification_form_sent_twice_records_once_and_a_refusal_redirects(demo: Demo) -> None:
    """整改 on the ratings page: the same form sent again lands on 整改已记录 (not 不能再整改) and
    the applicant is told once; an empty one is answered 303 to the page with the reason."""
    with clock.frozen(at("2026-12-04 10:00")):
        rid = rate(demo, finished_case(demo), 1, reasons=["attitude"]).json()["rectification_id"]
        sup = TestClient(demo.client.app, base_url=str(demo.client.base_url))
        assert page_login(sup, demo.tokens["赵督查"], "/ui/hall/ratings").status_code == 303
        origin = {"Origin": origin_of(sup)}
        url = f"/ui/hall/rectifications/{rid}/done"
        empty = {**_hidden(sup.get("/ui/hall/ratings").text, f"rectify-{rid}"), "text": " "}
        refused = sup.post(url, data=empty, headers=origin, follow_redirects=False)
        assert refused.status_code == 303 and "failed=" in refused.headers["location"]
        assert "请填写整改措施" in sup.get(refused.headers["location"]).text
        form = {**_hidden(sup.get("/ui/hall/ratings").text, f"rectify-{rid}"), "text": "约谈窗口人员"}
        first = sup.post(url, data=form, headers=origin, follow_redirects=False)
        told = demo.count("notifications")
        again = sup.post(url, data=form, headers=origin, follow_redirects=False)
        assert first.status_code == again.status_code == 303
        assert again.headers["location"] == first.headers["location"] == f"/ui/hall/ratings?done=done#r{rid}"
        assert "整改已记录" in sup.get(again.headers["location"]).text
        assert demo.count("notifications") == told
