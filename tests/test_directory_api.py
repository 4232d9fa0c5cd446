"""The directory's admin API: every change a new directory version, checked as an import is."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from conftest import Demo

from engine.actors import add_clerk, authenticate, issue_token
from engine.directory_manage import directory_clerk
from engine.idcodes import make_credit_code
from storage.db import session_scope
from storage.directory_tables import T_SERVICE, CounterKind
from storage.tables import Clerk, Counter, CounterItem, Region

API = "/api/v1/directory"
CODE = make_credit_code("1132050000001234")  # a 统一社会信用代码 with both check characters right


def admin(demo: Demo) -> dict[str, str]:
    with session_scope(demo.engine) as s:
        _, token = add_clerk(s, "目录管理员", None, ["directory_admin"], 30)
    return {"Authorization": f"Bearer {token}"}


def version(demo: Demo, h: dict[str, str]) -> int:
    return int(demo.client.get(API, headers=h).json()["version"])


def test_admin_adds_a_region_unit_counter_and_clerk_each_a_new_version(sqlite_demo: Demo) -> None:
    demo = sqlite_demo
    c = demo.client
    assert c.put(f"{API}/regions/320500", json={"name": "苏州市"}, headers=demo.h("王芳")).status_code == 403
    h = admin(demo)
    v0 = version(demo, h)

    r = c.put(f"{API}/regions/320500", json={"name": "苏州市"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == v0 + 1 and r.json()["changes"] == ["+ 地区 320500: 苏州市"]
    again = c.put(f"{API}/regions/320500", json={"name": "苏州市"}, headers=h).json()
    assert again["changed"] is False and again["version"] == v0 + 1  # the same document: no version

    # Bad input names the field, and writes nothing.
    unit = {"name": "苏州市政务服务管理办公室", "code": CODE, "region": "320500", "abbr": "苏政务"}
    bad = c.put(f"{API}/units/sz-zwb", json=unit | {"region": "320599"}, headers=h)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"] == [{"field": "region", "reason": "未列出的行政区划 320599"}], bad.text
    miswritten = CODE[:-1] + ("0" if CODE[-1] != "0" else "1")
    wrong_code = c.put(f"{API}/units/sz-zwb", json=unit | {"code": miswritten}, headers=h)
    assert wrong_code.status_code == 422 and wrong_code.json()["errors"][0]["field"] == "code", wrong_code.text
    extra = c.put(f"{API}/units/sz-zwb", json=unit | {"color": "red"}, headers=h)
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"].endswith("color"), extra.text
    assert version(demo, h) == v0 + 1
    assert c.put(f"{API}/units/sz-zwb", json=unit, headers=h).status_code == 200

    counter = {"name": "苏州市民中心综合窗口", "region": "320500", "unit": "sz-zwb", "kind": "guide_only",
               "items": {"GGCSWSXK": ["intake"]}}
    bad = c.put(f"{API}/counters/sz-zhengwu", json=counter, headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "items.GGCSWSXK", bad.text
    r = c.put(f"{API}/counters/sz-zhengwu", json=counter | {"kind": "staffed"}, headers=h)
    assert r.status_code == 200 and "+ 窗口 sz-zhengwu 事项 GGCSWSXK: intake" in r.json()["changes"], r.text
    r = c.put(f"{API}/counters/sz-zhengwu/items", json={"items": {"GGCSWSXK": ["intake", "competent"]}}, headers=h)
    assert r.json()["changes"] == ["~ 窗口 sz-zhengwu 事项 GGCSWSXK: intake → competent,intake"], r.text
    assert c.put(f"{API}/counters/nowhere/items", json={"items": {}}, headers=h).status_code == 404

    r = c.post(f"{API}/clerks", json={"name": "周敏", "counter": "sz-zhengwu", "roles": ["clerk"]}, headers=h)
    assert r.status_code == 200 and "token" not in r.text, r.text
    r = c.post(f"{API}/clerks", json={"name": "周敏", "counter": "sz-zhengwu", "roles": ["clerk", "reviewer"]},
               headers=h)
    assert r.json()["changes"] == ["~ 工作人员 周敏@sz-zhengwu: clerk → clerk,reviewer"], r.text
    with session_scope(demo.engine) as s:
        assert s.get(Region, "320500").name == "苏州市"
        assert s.get(Counter, "sz-zhengwu").region_code == "320500"
        assert s.get(CounterKind, "sz-zhengwu").kind == "staffed"
        roles = {(i.item_code, i.role) for i in s.query(CounterItem).filter_by(counter_id="sz-zhengwu")}
        assert roles == {("GGCSWSXK", "intake"), ("GGCSWSXK", "competent")}
        clerk = directory_clerk(s, "周敏", "sz-zhengwu")
        assert clerk is not None and clerk.roles == "clerk,reviewer"
        assert s.query(Clerk).filter_by(name="周敏", counter_id="sz-zhengwu").count() == 1  # edited, not created twice
        token = issue_token(s, clerk, 30)  # what `tongban directory token 周敏 --counter sz-zhengwu` does
    with session_scope(demo.engine) as s:
        actor = authenticate(s, token)
        assert actor.counter_id == "sz-zhengwu" and actor.region_code == "320500"

    whole: dict[str, Any] = c.get(API, headers=h).json()
    assert whole["version"] == v0 + 6
    assert {"id": "sz-zhengwu", "name": "苏州市民中心综合窗口", "unit": "sz-zwb", "region": "320500",
            "kind": "staffed", "supervised_by": None,
            "items": {"GGCSWSXK": ["competent", "intake"]},
            "hours": None, "capacity": None, "groups": None, "service": None} in whole["counters"]  # no ticket rules
    versions = c.get(f"{API}/versions", headers=h).json()
    assert [v["version"] for v in versions["items"]][-6:] == list(range(v0 + 1, v0 + 7))
    assert versions["items"][-1]["imported_by"] == "目录管理员" and versions["next_cursor"] is None


def test_admin_removes_a_counter_and_deactivates_a_clerk_each_a_new_version(sqlite_demo: Demo) -> None:
    demo = sqlite_demo
    c = demo.client
    h = admin(demo)
    v0 = version(demo, h)
    token = demo.tokens["周敏"]
    assert c.delete(f"{API}/counters/pd-jiaoyu", headers=demo.h("王芳")).status_code == 403

    busy = c.delete(f"{API}/counters/pd-jiaoyu", headers=h)  # 周敏 still sits there
    assert busy.status_code == 409 and busy.headers["content-type"] == "application/problem+json", busy.text
    assert busy.json()["clerks"] == ["周敏"] and "周敏" in busy.json()["detail"]
    documented = c.get("/openapi.json").json()["paths"][f"{API}/counters/{{counter_id}}"]["delete"]["responses"]
    assert "409" in documented  # the refusal is part of the contract a generated client reads
    assert c.delete(f"{API}/clerks/周敏", params={"counter": "nowhere"}, headers=h).status_code == 404
    assert version(demo, h) == v0

    r = c.delete(f"{API}/clerks/周敏", params={"counter": "pd-jiaoyu"}, headers=h)
    assert r.status_code == 200 and r.json() == {
        "version": v0 + 1, "changed": True, "content_hash": r.json()["content_hash"],
        "changes": ["- 工作人员 周敏@pd-jiaoyu: approver"]}, r.text
    assert c.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    r = c.delete(f"{API}/counters/pd-jiaoyu", headers=h)
    assert r.status_code == 200 and r.json()["version"] == v0 + 2, r.text
    assert r.json()["changes"] == ["- 窗口 pd-jiaoyu: 浦东新区教育局审批窗口 (有人值守窗口) 310115 pd-jiaoyu",
                                   "- 窗口 pd-jiaoyu 事项 MBXXZZHB: education"]
    whole = c.get(API, headers=h).json()
    assert "pd-jiaoyu" not in {k["id"] for k in whole["counters"]}
    assert ("周敏", "pd-jiaoyu") not in {(k["name"], k["counter"]) for k in whole["clerks"]}
    with session_scope(demo.engine) as s:
        assert s.get(Counter, "pd-jiaoyu") is not None  # cases still point at it
        assert s.query(CounterItem).filter_by(counter_id="pd-jiaoyu").count() == 0
        assert directory_clerk(s, "周敏", "pd-jiaoyu").active is False
    assert c.delete(f"{API}/counters/pd-jiaoyu", headers=h).status_code == 404

    booth = {"name": "济南市民中心临时窗口", "region": "370100", "items": {"GGCSWSXK": ["intake"]},
             "hours": "09:00-12:00", "capacity": 5}
    assert c.put(f"{API}/counters/jn-linshi", json=booth, headers=h).status_code == 200
    assert c.delete(f"{API}/counters/jn-linshi", headers=h).status_code == 200
    with session_scope(demo.engine) as s:  # its ticket machine gives no number either
        assert s.execute(sa.select(T_SERVICE).where(T_SERVICE.c.counter_id == "jn-linshi")).first() is None


def test_admin_gives_a_counter_ticket_hours_capacity_and_groups(demo: Demo) -> None:
    c, h = demo.client, admin(demo)
    counter = {"name": "济南市政务服务中心跨域通办专窗", "region": "370100", "unit": "jn-shenpi",
               "items": {"GGCSWSXK": ["intake", "competent"], "YDJYBA": ["intake", "competent"]},
               "hours": "08:30-12:00", "capacity": 100, "groups": {"A": "企业服务", "B": "个人事务"},
               "service": {"YDJYBA": {"group": "B", "capacity": 10}}}
    wrong = c.put(f"{API}/counters/jn-kuayu", json=counter | {"service": {"YDJYBA": {"group": "C"}}}, headers=h)
    assert wrong.status_code == 422 and "'C' 未在 groups" in wrong.text, wrong.text
    r = c.put(f"{API}/counters/jn-kuayu", json=counter, headers=h)
    assert r.status_code == 200, r.text
    assert "~ 窗口 jn-kuayu 取号时间: 09:00-12:00,13:00-17:00 → 08:30-12:00" in "\n".join(r.json()["changes"]), r.text
    shown = next(x for x in c.get(API, headers=h).json()["counters"] if x["id"] == "jn-kuayu")
    assert shown["capacity"] == 100 and shown["service"] == {"YDJYBA": {"group": "B", "capacity": 10}}
    with session_scope(demo.engine) as s:
        rows = {r.item_code: (r.hours, r.capacity, r.item_group) for r in s.execute(sa.select(T_SERVICE).where(
            T_SERVICE.c.counter_id == "jn-kuayu"))}
    assert rows == {"": ("08:30-12:00", 100, None), "YDJYBA": (None, 10, "B")}
