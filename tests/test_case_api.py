"""The clerk API end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from conftest import ALL_FGS, ALL_GGCS, Demo


def test_full_path_receive_accept_review_issue_complete(demo: Demo) -> None:
    # One clerk with every role, so that 一事一人 keeps the case with her at the counter.
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    assert case["state"]["id"] == "received" and case["status"]["code"] == 1
    # 事项情形 as the materials answer them: 新办, no 集中空调, the 负责人 in person (no 授权委托书).
    assert [(a["id"], a["answer"]) for a in case["situation"]] == [
        ("application_kind", "new"), ("aircon", "absent"), ("agent", "self")]
    # The decision periods run from 受理, not 收件; before it, the five days to notify missing materials.
    assert case["query_code"] and case["deadlines"]["promised"] is None and case["deadlines"]["supplement_notice"]
    path = [("accept", "accepted"), ("start_review", "review"), ("approve", "approved"),
            ("issue", "issued"), ("deliver", "completed")]
    version = case["version"]
    for trigger, state in path:
        out = demo.fire("陈静", n, trigger, version)
        assert out["state"]["id"] == state
        assert out["version"] == version + 1
        version = out["version"]
        if trigger == "accept":
            assert out["deadlines"]["accepted_at"] and out["deadlines"]["promised"] and out["deadlines"]["legal"]
        if trigger == "approve":
            assert out["deadlines"]["certificate"]  # due ten working days after the decision
    assert out["state"]["final"] and out["status"]["code"] == 11 and out["holders"] == []
    events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("陈静")).json()["items"]
    assert [e["trigger"] for e in events] == [None, *[t for t, _ in path]]
    assert [e["seq"] for e in events] == list(range(1, 7))
    assert all(e["actor_name"] == "陈静" and e["counter_id"] == "pd-zhengwu" for e in events)
    with demo.engine.connect() as conn:
        jobs = {j for (j,) in conn.exec_driver_sql("SELECT job FROM outbox").all()}
    assert {"notify_applicant", "issue_certificate", "create_waybill"} <= jobs


def test_cross_region_handoff_moves_case_between_queues(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")
    n = case["number"]
    assert case["intake_counter"] == "jn-kuayu" and case["competent_counter"] == "qd-xihai"
    assert case["mode"] == "异地代收代办"

    def queue(who: str) -> list[str]:
        r = demo.client.get("/api/v1/cases", headers=demo.h(who))
        assert r.status_code == 200, r.text
        return [c["number"] for c in r.json()["items"]]

    assert n in queue("王芳") and n not in queue("李强")
    # The competent counter cannot act before the hand-off.
    demo.fire("李强", n, "forward", case["version"], expect=403)
    out = demo.fire("王芳", n, "forward", case["version"])
    assert out["holders"] == ["qd-xihai"]
    assert n not in queue("王芳") and n in queue("李强")
    with demo.engine.connect() as conn:
        handoffs = conn.exec_driver_sql("SELECT region_code, counter_id FROM outbox WHERE job = 'handoff'").all()
    assert [tuple(h) for h in handoffs] == [("370211", "qd-xihai")]
    # The intake clerk can still read the case (her counter took part) and, as the applicant's
    # companion, record a withdrawal; the handling is Qingdao's.
    view = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("王芳")).json()
    assert [t["trigger"] for t in view["triggers"] if t["open"]] == ["withdraw"]
    out = demo.fire("李强", n, "approve", out["version"])
    out = demo.fire("李强", n, "issue", out["version"])
    # The result travels back to the intake counter for pickup: a hand-off the other way.
    assert out["holders"] == ["jn-kuayu"] and n in queue("王芳") and n not in queue("李强")
    demo.fire("王芳", n, "hand_over", out["version"])
    assert n not in queue("王芳")


def test_stale_if_match_is_refused_and_writes_nothing(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    demo.fire("陈静", n, "accept", case["version"])
    before = demo.count("history"), demo.count("outbox")
    r = demo.fire("陈静", n, "start_review", case["version"], expect=412)
    assert r["type"] == "/problems/stale-version" and r["current_version"] == case["version"] + 1
    assert (demo.count("history"), demo.count("outbox")) == before
    missing = demo.client.post(f"/api/v1/cases/{n}/triggers/start_review", headers=demo.h("陈静"))
    # A missing If-Match is 428 Precondition Required (RFC 6585), naming the header.
    assert missing.status_code == 428 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "/problems/precondition-required"
    assert missing.json()["errors"][0]["field"] == "If-Match"
    assert (demo.count("history"), demo.count("outbox")) == before


def test_wrong_role_and_wrong_counter_are_403_naming_what_is_missing(demo: Demo) -> None:
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    r = demo.fire("王芳", n, "start_review", expect=409)  # not open yet: still received
    out = demo.fire("王芳", n, "accept", case["version"])
    r = demo.fire("王芳", n, "start_review", out["version"], expect=403)
    assert "role:reviewer" in r["missing"] and "审核人员" in r["detail"]
    r = demo.fire("陈静", n, "start_review", out["version"], expect=403)
    # The message names the counter; the machine-readable part keeps its id.
    assert r["missing"] == ["counter:jn-kuayu"] and "济南市政务服务中心跨域通办专窗" in r["detail"]
    assert "jn-kuayu" not in r["detail"]
    # 受审分离: the reviewer at the same counter reviews what the intake clerk accepted.
    assert demo.fire("刘洋", n, "start_review", out["version"])["state"]["id"] == "review"


def test_trigger_not_open_lists_open_triggers(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    r = demo.fire("陈静", case["number"], "approve", case["version"], expect=409)
    assert r["type"] == "/problems/trigger-not-open"
    assert r["open_triggers"] == ["accept", "refuse", "request_supplement", "withdraw"]


def test_idempotency_key_replays_the_same_answer_and_writes_one_event(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    headers = demo.h("陈静", **{"If-Match": f'"{case["version"]}"', "Idempotency-Key": "k-1"})
    first = demo.client.post(f"/api/v1/cases/{n}/triggers/accept", headers=headers)
    again = demo.client.post(f"/api/v1/cases/{n}/triggers/accept", headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and again.headers["ETag"] == first.headers["ETag"]
    assert demo.count("history", trigger="accept") == 1
    other = demo.client.post(f"/api/v1/cases/{n}/triggers/refuse", headers=headers, json={"comment": "x"})
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"


def test_guard_required_materials_and_deferral(demo: Demo) -> None:
    partial = {k: v for k, v in ALL_GGCS.items() if k != "hygiene_report"}
    case = demo.create("陈静", "GGCSWSXK", partial)
    n = case["number"]
    accept = next(t for t in case["triggers"] if t["trigger"] == "accept")
    assert not accept["open"] and "卫生检测或评价报告" in accept["reasons"][0]
    r = demo.fire("陈静", n, "accept", case["version"], expect=409)
    assert r["type"] == "/problems/guard-failed" and r["guards"][0]["guard"] == "required_materials"
    # A non-deferrable material cannot be deferred; the refusal names the field and changes nothing.
    r = demo.fire("陈静", n, "accept", case["version"], expect=422,
                  defer=[{"material": "legal_rep_id", "promise": "三日内补交"}])
    assert r["errors"][0]["field"] == "defer[0].material"
    # 容缺受理: the deferrable report may follow under a written promise.
    out = demo.fire("陈静", n, "accept", case["version"],
                    defer=[{"material": "hygiene_report", "promise": "五个工作日内补交检测报告"}])
    report = next(m for m in out["materials"] if m["id"] == "hygiene_report")
    assert report["status"] == "deferred" and report["deferred_due"] and report["promise"]


def test_material_checkin_opens_the_guard(demo: Demo) -> None:
    case = demo.create("陈静", "FGSFZRBG", {"application": "received"})
    n = case["number"]
    version = case["version"]
    for m in ("power_of_attorney", "appointment_docs", "license"):
        r = demo.client.put(f"/api/v1/cases/{n}/materials/{m}", json={"status": "received"},
                            headers=demo.h("陈静", **{"If-Match": f'"{version}"'}))
        assert r.status_code == 200, r.text
        version = r.json()["version"]
    assert next(t for t in r.json()["triggers"] if t["trigger"] == "forward")["open"]


def test_commitment_guard(demo: Demo) -> None:
    case = demo.create("陈静", "CBWLSXK", {m: "received" for m in ("application", "premises_proof", "operator_id")})
    n = case["number"]
    out = demo.fire("陈静", n, "accept", case["version"])
    r = demo.fire("陈静", n, "approve_on_commitment", out["version"], expect=409)
    assert r["guards"][0]["guard"] == "commitment_signed"
    out = demo.fire("陈静", n, "approve_on_commitment", out["version"],
                    commitment={"signer": "张三"})
    assert out["state"]["id"] == "approved"


def test_parallel_review_moves_on_only_after_both_departments(demo: Demo) -> None:
    mats = {m: "received" for m in ("application", "founder_docs", "charter", "premises", "assets",
                                    "principal", "fire_safety")}
    for order in (["周敏", "吴磊"], ["吴磊", "周敏"]):
        case = demo.create("陈静", "MBXXZZHB", mats)
        n = case["number"]
        out = demo.fire("陈静", n, "accept", case["version"])
        assert out["state"]["id"] == "joint_review"
        assert sorted(out["holders"]) == ["pd-jiaoyu", "pd-shichang", "pd-zhengwu"]
        trig = {"周敏": "education_approve", "吴磊": "market_approve"}
        # A department cannot approve the other department's branch.
        other = {"周敏": "market_approve", "吴磊": "education_approve"}
        demo.fire(order[0], n, other[order[0]], out["version"], expect=403)
        out = demo.fire(order[0], n, trig[order[0]], out["version"])
        assert out["state"]["id"] == "joint_review"
        assert [b["done"] for b in out["branches"]].count(True) == 1
        out = demo.fire(order[1], n, trig[order[1]], out["version"])
        # The join fired by itself once both were done.
        assert out["state"]["id"] == "approved" and out["holders"] == ["pd-zhengwu"]
        events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("陈静")).json()["items"]
        assert [e["trigger"] for e in events[-3:]] == [trig[order[0]], trig[order[1]], "join"]
        assert events[-1]["actor_name"] == "系统"


def test_guide_only_counter_cannot_take_the_item(demo: Demo) -> None:
    r = demo.client.post("/api/v1/cases", headers=demo.h("黄丽"), json={
        "item_code": "CBWLSXK", "applicant": {"name": "某书店"}})
    assert r.status_code == 403 and "远程指导" in r.json()["detail"]


def test_bad_intake_body_is_a_problem_and_leaves_no_row(demo: Demo) -> None:
    before = demo.count("cases"), demo.count("case_materials"), demo.count("history")
    r = demo.client.post("/api/v1/cases", headers=demo.h("王芳"), json={
        "item_code": "GGCSWSXK", "applicant": {"name": "", "phone": "not a phone"}})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"applicant.name", "applicant.phone"} <= fields
    r = demo.client.post("/api/v1/cases", headers=demo.h("王芳"), json={
        "item_code": "GGCSWSXK", "applicant": {"name": "甲"}, "materials": {"nope": "received"},
        "situation": {"application_kind": "new", "aircon": "absent", "agent": "self"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "materials.nope"
    r = demo.client.post("/api/v1/cases", headers=demo.h("王芳"), json={
        "item_code": "FGSFZRBG", "applicant": {"name": "甲"}, "competent_region": "999999"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "competent_region"
    assert (demo.count("cases"), demo.count("case_materials"), demo.count("history")) == before
    assert demo.client.get("/api/v1/cases", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_queue_filters_and_keyset_pagination(demo: Demo) -> None:
    numbers = [demo.create("陈静", "GGCSWSXK", ALL_GGCS)["number"] for _ in range(5)]
    numbers += [demo.create("陈静", "CBWLSXK")["number"] for _ in range(2)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "item": "GGCSWSXK", **({"cursor": cursor} if cursor else {})}
        page = demo.client.get("/api/v1/cases", params=params, headers=demo.h("陈静")).json()
        seen += [c["number"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == numbers[:5]
    me = demo.actor("陈静").id
    mine = demo.client.get("/api/v1/cases", params={"assignee": me}, headers=demo.h("陈静")).json()
    assert len(mine["items"]) == 7
    assert demo.client.get("/api/v1/cases", params={"overdue": True},
                           headers=demo.h("陈静")).json()["items"] == []
    r = demo.client.get("/api/v1/cases", params={"counter": "jn-kuayu"}, headers=demo.h("陈静"))
    assert r.status_code == 403
    r = demo.client.get("/api/v1/cases", params={"counter": "pd-zhengwu"}, headers=demo.h("赵督查"))
    assert r.status_code == 200 and len(r.json()["items"]) == 7
    r = demo.client.get("/api/v1/cases", params={"cursor": "%%%"}, headers=demo.h("陈静"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"


def test_unrelated_counter_cannot_read_a_case(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    r = demo.client.get(f"/api/v1/cases/{case['number']}", headers=demo.h("黄丽"))
    assert r.status_code == 403
    assert demo.client.get(f"/api/v1/cases/{case['number']}", headers=demo.h("赵督查")).status_code == 200


def test_a_claimed_step_is_handed_to_a_named_colleague(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    out = demo.fire("陈静", n, "accept", case["version"])
    r = demo.client.post(f"/api/v1/cases/{n}/claim", headers=demo.h("陈静", **{"If-Match": f'"{out["version"]}"'}))
    assert r.status_code == 200, r.text
    assert r.json()["assignees"]["pd-zhengwu"] == demo.actor("陈静").id
    # 赵督查 hands the step to 黄丽? Not at this counter: refused, naming the counter.
    body = {"counter_id": "pd-zhengwu", "clerk_id": demo.actor("黄丽").id}
    h = demo.h("赵督查", **{"If-Match": f'"{r.json()["version"]}"'})
    bad = demo.client.post(f"/api/v1/cases/{n}/assignee", json=body, headers=h)
    assert bad.status_code == 422 and "浦东新区企业服务中心综合窗口" in bad.json()["detail"]


def test_times_carry_the_product_zones_offset(demo: Demo) -> None:
    """Every time the API gives is explicit, in the product's zone (+08:00), whichever database
    stored it (SQLite keeps no zone)."""
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    fired = demo.fire("陈静", case["number"], "accept", case["version"])
    shown = demo.client.get(f"/api/v1/cases/{case['number']}", headers=demo.h("陈静")).json()
    events = demo.client.get(f"/api/v1/cases/{case['number']}/history", headers=demo.h("陈静")).json()["items"]
    times = [v[k] for v in (case, fired, shown) for k in ("created_at", "updated_at")] + [e["at"] for e in events]
    assert len(times) == 8
    assert all(datetime.fromisoformat(t).utcoffset() == timedelta(hours=8) for t in times), times


def test_case_reads_answer_304_until_the_representation_changes(demo: Demo) -> None:
    """If-None-Match: 304 while the bytes would be the same; the sweep's 逾期 (no new version)
    and a new version each give a new ETag; If-Match takes the whole ETag or the version."""
    import sqlalchemy as sa

    from engine.deadlines import sweep
    from storage.db import session_scope
    from storage.tables import T_CASE

    D = date.fromisoformat

    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n, url = case["number"], f"/api/v1/cases/{case['number']}"
    first = demo.client.get(url, headers=demo.h("陈静"))
    etag = first.headers["ETag"]
    assert etag.startswith(f'"{case["version"]}-') and first.headers["Cache-Control"] == "private, no-cache"
    again = demo.client.get(url, headers=demo.h("陈静", **{"If-None-Match": etag}))
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    assert demo.client.get(url, headers=demo.h("陈静", **{"If-None-Match": f'W/{etag}, "x"'})).status_code == 304
    # Another clerk's view (other triggers open) is another representation.
    assert demo.client.get(url, headers=demo.h("赵督查", **{"If-None-Match": etag})).status_code == 200
    # The sweep marks the case 逾期 without a new version: the representation changed.
    with demo.engine.begin() as conn:
        conn.execute(sa.update(T_CASE).where(T_CASE.c.number == n).values(supplement_notice_due=D("2026-01-05")))
    with session_scope(demo.engine) as s:
        sweep(s, D("2026-01-12"))
    swept = demo.client.get(url, headers=demo.h("陈静", **{"If-None-Match": etag}))
    assert swept.status_code == 200 and swept.json()["version"] == case["version"]
    assert swept.json()["deadlines"]["status"] == "逾期" and swept.headers["ETag"] != etag
    # If-Match: the whole ETag (its version is what counts), then the bare version.
    accepted = demo.client.post(f"{url}/triggers/accept", headers=demo.h("陈静", **{"If-Match": etag}))
    assert accepted.status_code == 200, accepted.text
    assert demo.client.get(url, headers=demo.h("陈静", **{"If-None-Match": swept.headers["ETag"]})).status_code == 200
    stale = demo.client.post(f"{url}/triggers/start_review", headers=demo.h("陈静", **{"If-Match": etag}))
    assert stale.status_code == 412


def test_progress_answers_304_with_the_right_code_only(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    url = f"/api/v1/progress/{case['number']}"
    r = demo.client.get(url, params={"code": case["query_code"]})
    assert r.status_code == 200 and r.json()["status"] == {"code": 1, "label": "已接件"}
    etag = r.headers["ETag"]
    assert demo.client.get(url, params={"code": case["query_code"]}, headers={"If-None-Match": etag}).status_code == 304
    assert demo.client.get(url, params={"code": "WRONG12345"}, headers={"If-None-Match": etag}).status_code == 404
    demo.fire("陈静", case["number"], "accept", case["version"])
    changed = demo.client.get(url, params={"code": case["query_code"]}, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["status"]["label"] == "已受理"
