"""The whole life of a case: 延期, 撤回 (by the clerk and by the applicant), 退回, 容缺 at intake,
告知承诺, and the exchange status codes 7, 10 and 12 — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from conftest import ALL_FGS, ALL_GGCS, Demo, page_login
from fastapi.testclient import TestClient

from core import clock
from engine.workdays import DEFAULT as CAL
from storage.tables import T_CASE, T_MAT

BEIJING = ZoneInfo("Asia/Shanghai")
CBW = {"application": "received", "operator_id": "received"}  # premises_proof may be deferred


def events(demo: Demo, number: str, who: str = "陈静") -> list[dict]:
    return demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h(who)).json()["items"]


def post(demo: Demo, who: str, path: str, version: int, body: dict | None = None):  # type: ignore[no-untyped-def]
    return demo.client.post(path, json=body, headers=demo.h(who, **{"If-Match": f'"{version}"'}))


def test_an_extension_moves_the_legal_due_date_once_and_tells_the_applicant(demo: Demo) -> None:
    with clock.frozen(datetime(2026, 11, 2, 10, 0, tzinfo=BEIJING)):
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        n = case["number"]
        out = demo.fire("陈静", n, "accept", case["version"])
        legal = date.fromisoformat(out["deadlines"]["legal"])
        # Only an approver of the competent counter, with a reason, before the decision.
        other = post(demo, "黄丽", f"/api/v1/cases/{n}/extension", out["version"], {"reason": "需专家论证"})
        assert other.status_code == 403
        bad = post(demo, "陈静", f"/api/v1/cases/{n}/extension", out["version"], {"reason": ""})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
        r = post(demo, "陈静", f"/api/v1/cases/{n}/extension", out["version"], {"reason": "需组织专家论证"})
        assert r.status_code == 200, r.text
        ext = r.json()
        assert ext["deadlines"]["legal"] == CAL.add(legal, 10).isoformat() and ext["deadlines"]["extended_days"] == 10
        again = post(demo, "陈静", f"/api/v1/cases/{n}/extension", ext["version"], {"reason": "再次延期"})
        assert again.status_code == 409 and "只能延期一次" in again.json()["detail"]
    last = events(demo, n)[-1]
    assert last["kind"] == "extension" and last["comment"] == "需组织专家论证"
    assert last["data"]["approver"] == "陈静" and last["data"]["days"] == 10
    with demo.engine.connect() as conn:
        notice = conn.exec_driver_sql("SELECT payload FROM outbox WHERE job = 'notify_applicant' "
                                      "ORDER BY created_at DESC LIMIT 1").scalar_one()
    assert "延长 10 个工作日" in (notice if isinstance(notice, str) else str(notice))


def test_an_extension_after_the_legal_due_date_is_refused(demo: Demo) -> None:
    with clock.frozen(datetime(2026, 11, 2, 10, 0, tzinfo=BEIJING)):
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        out = demo.fire("陈静", case["number"], "accept", case["version"])
    late = datetime.combine(CAL.add(date.fromisoformat(out["deadlines"]["legal"]), 1), datetime.min.time(), BEIJING)
    with clock.frozen(late):
        r = post(demo, "陈静", f"/api/v1/cases/{case['number']}/extension", out["version"], {"reason": "太晚了"})
    assert r.status_code == 409 and "已过" in r.json()["detail"]


def test_the_companion_clerk_records_a_withdrawal_while_another_region_handles_the_case(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")
    n = case["number"]
    out = demo.fire("王芳", n, "forward", case["version"])  # now at Qingdao
    bad = demo.fire("王芳", n, "withdraw", out["version"], expect=409)  # a reason is required
    assert "理由" in bad["detail"]
    out = demo.fire("王芳", n, "withdraw", out["version"], comment="申请人决定暂缓变更")
    assert out["state"]["id"] == "withdrawn" and out["status"]["code"] == 14 and out["holders"] == []
    assert events(demo, n, "王芳")[-1]["comment"] == "申请人决定暂缓变更"


def test_the_applicant_withdraws_on_the_progress_page_with_the_query_code(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n, code = case["number"], case["query_code"]
    page = demo.client.post("/progress", data={"number": n, "code": code})
    assert 'id="withdraw-form"' in page.text
    wrong = demo.client.post("/progress/withdraw", data={"number": n, "code": "WRONGCODE1", "reason": "不办了"})
    assert wrong.status_code == 404 and "查询码" in wrong.text
    done = demo.client.post("/progress/withdraw", data={"number": n, "code": code, "reason": "已在别处办理"})
    assert done.status_code == 200 and "申请已撤回" in done.text and "撤回" in done.text
    again = demo.client.post("/progress/withdraw", data={"number": n, "code": code, "reason": "已在别处办理"})
    assert again.status_code == 409 and "不能撤回" in again.text  # F5 resends: refused, nothing written
    kinds = [(e["trigger"], e["actor_name"], e["comment"]) for e in events(demo, n)]
    assert kinds[-1] == ("withdraw", "测试申请人(申请人)", "已在别处办理") and len(kinds) == 2
    shown = demo.client.get(f"/api/v1/progress/{n}", params={"code": code}).json()
    assert shown["status"]["label"] == "撤回" and shown["can_withdraw"] is False


def test_no_withdrawal_after_the_decision(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    v = case["version"]
    for t in ("accept", "start_review", "approve"):
        v = demo.fire("陈静", n, t, v)["version"]
    r = demo.fire("陈静", n, "withdraw", v, expect=409, comment="太晚了")
    assert "withdraw" not in r["open_triggers"]


def test_sending_back_goes_to_the_step_the_case_came_from(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    v = demo.fire("陈静", n, "accept", case["version"])["version"]
    v = demo.fire("陈静", n, "start_inspection", v)["version"]
    v = demo.fire("陈静", n, "inspection_passed", v)["version"]  # now 审核, having come from 现场踏勘
    view = demo.client.get(f"/api/v1/cases/{n}", headers=demo.h("陈静")).json()
    back = {t["trigger"]: t for t in view["triggers"] if t["trigger"].startswith("back_to_")}
    assert back["back_to_inspection"]["open"] and back["back_to_inspection"]["comment_required"]
    assert not back["back_to_accepted"]["open"] and "现场踏勘" in back["back_to_accepted"]["reasons"][0]
    demo.fire("陈静", n, "back_to_accepted", v, expect=409, comment="退回")  # not where it came from
    out = demo.fire("陈静", n, "back_to_inspection", v, comment="补拍消毒间照片")
    assert out["state"]["id"] == "inspection" and out["status"]["code"] == 9


def test_deferral_at_intake_keeps_the_promise_and_its_due_date(demo: Demo) -> None:
    with clock.frozen(datetime(2026, 11, 2, 10, 0, tzinfo=BEIJING)):
        case = demo.create("陈静", "CBWLSXK", CBW,
                           defer=[{"material": "premises_proof", "promise": "五个工作日内补交租赁合同"}])
    with demo.engine.connect() as conn:
        row = conn.execute(sa.select(T_MAT).where(T_MAT.c.material_id == "premises_proof")).mappings().one()
    assert row["status"] == "deferred" and row["promise"] == "五个工作日内补交租赁合同"
    assert row["deferred_due"] == CAL.add(date(2026, 11, 2), 5)
    shown = next(m for m in case["materials"] if m["id"] == "premises_proof")
    assert shown["promise"] == "五个工作日内补交租赁合同" and shown["deferred_due"] == "2026-11-09"


def test_a_commitment_is_kept_on_the_case_and_in_history_and_finishing_with_a_deferral_is_12(demo: Demo) -> None:
    case = demo.create("陈静", "CBWLSXK", CBW,
                       defer=[{"material": "premises_proof", "promise": "五个工作日内补交租赁合同"}])
    n = case["number"]
    v = demo.fire("陈静", n, "accept", case["version"])["version"]
    promise = {"signer": "张三", "text": "本人承诺所填写信息真实、准确, 并按期补齐相关材料。"}
    out = demo.fire("陈静", n, "approve_on_commitment", v, commitment=promise)
    last = events(demo, n)[-1]
    assert last["data"]["commitment"]["signer"] == "张三" and last["data"]["commitment"]["signed_at"]
    with demo.engine.connect() as conn:
        kept = conn.execute(sa.select(T_CASE.c.commitment).where(T_CASE.c.number == n)).scalar_one()
    assert kept["signer"] == "张三" and kept["text"] == promise["text"] and kept["recorded_by"] == "陈静"
    page = _page(demo, "陈静", f"/ui/cases/{n}")
    assert "张三 签署于" in page and "五个工作日内补交租赁合同" in page  # both facts on the case page
    for t in ("issue", "deliver"):
        out = demo.fire("陈静", n, t, out["version"])
    assert out["state"]["final"] and out["status"]["code"] == 12  # 办结(容缺通过): the deferral is outstanding


def test_status_is_7_after_a_supplement_and_10_after_an_inspection(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    out = demo.fire("陈静", n, "request_supplement", case["version"], comment="请补正平面图")
    assert out["status"]["code"] == 6
    out = demo.fire("陈静", n, "supplement_done", out["version"])
    assert out["status"]["code"] == 7 and out["state"]["id"] == "received"  # 补正结束
    out = demo.fire("陈静", n, "accept", out["version"])
    assert out["status"]["code"] == 3
    out = demo.fire("陈静", n, "start_inspection", out["version"])
    assert out["status"]["code"] == 9
    out = demo.fire("陈静", n, "inspection_passed", out["version"])
    assert out["status"]["code"] == 10 and out["state"]["id"] == "review"  # 特别程序结束


def _page(demo: Demo, who: str, path: str) -> str:
    client = TestClient(demo.client.app)
    assert page_login(client, demo.tokens[who]).status_code == 303
    r = client.get(path)
    assert r.status_code == 200, r.text
    return r.text
