"""The lifecycle's edge cases: who may claim, the 补正 notice once given, the certificate's period,
sending back twice, stored versions under newer rules, and where 撤回 may be declared."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo, run_jobs

from core import clock
from core.settings import ROOT
from engine import catalog, deadlines
from engine.actors import add_clerk
from engine.workdays import DEFAULT as CAL
from states.loader import DefinitionError
from storage.db import session_scope
from storage.tables import T_CASE, ItemVersion

BEIJING = ZoneInfo("Asia/Shanghai")
SRC = (ROOT / "catalog" / "items" / "ggcs_weisheng_xuke.yaml").read_text(encoding="utf-8")


def status(demo: Demo, number: str) -> str | None:
    with demo.engine.connect() as conn:
        return conn.execute(sa.select(T_CASE.c.deadline_status).where(T_CASE.c.number == number)).scalar_one()


def test_a_clerk_without_the_step_role_can_neither_claim_it_nor_be_handed_it(demo: Demo) -> None:
    with session_scope(demo.engine) as s:
        _, token = add_clerk(s, "窗口员", "pd-zhengwu", ["clerk"], 30)
        demo.tokens["窗口员"] = token
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    out = demo.fire("陈静", case["number"], "accept", case["version"])
    out = demo.fire("陈静", case["number"], "start_review", out["version"])  # 审核: approvers' work
    h = demo.h("窗口员", **{"If-Match": f'"{out["version"]}"'})
    r = demo.client.post(f"/api/v1/cases/{case['number']}/claim", headers=h)
    assert r.status_code == 403 and "办理角色" in r.json()["detail"]  # 撤回 makes nobody a reviewer
    body = {"counter_id": "pd-zhengwu", "clerk_id": demo.actor("窗口员").id}
    r = demo.client.post(f"/api/v1/cases/{case['number']}/assignee", json=body,
                         headers=demo.h("赵督查", **{"If-Match": f'"{out["version"]}"'}))
    assert r.status_code == 422 and "窗口员没有「审核」的办理角色" in r.json()["detail"]


def test_the_supplement_notice_once_given_no_longer_runs(demo: Demo) -> None:
    with clock.frozen(datetime(2026, 11, 2, 9, 0, tzinfo=BEIJING)):
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        out = demo.fire("陈静", case["number"], "request_supplement", case["version"], comment="缺平面图")
    # The applicant takes three weeks; back at 已接件, the five days of art. 32 were met long ago.
    with clock.frozen(datetime(2026, 11, 23, 9, 0, tzinfo=BEIJING)):
        out = demo.fire("陈静", case["number"], "supplement_done", out["version"])
        assert out["deadlines"]["supplement_notice"] is None
        with session_scope(demo.engine) as s:
            deadlines.sweep(s)
    assert status(demo, case["number"]) == deadlines.NORMAL


def test_after_the_decision_the_certificate_period_runs(demo: Demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with clock.frozen(datetime(2026, 11, 2, 9, 0, tzinfo=BEIJING)):
        case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
        v = case["version"]
        for t in ("accept", "start_review", "approve"):
            out = demo.fire("陈静", case["number"], t, v)
            v = out["version"]
    due = date.fromisoformat(out["deadlines"]["certificate"])
    assert due == CAL.add(date(2026, 11, 2), 10)
    late = datetime.combine(due + timedelta(days=1), datetime.min.time(), BEIJING) + timedelta(hours=9)
    with clock.frozen(late), session_scope(demo.engine) as s:
        deadlines.sweep(s)  # no certificate yet (nobody ran the job): its ten days are over
    assert status(demo, case["number"]) == deadlines.OVERDUE
    from core.settings import get_settings
    from storage.object_factory import get_store

    get_settings().object_dir = tmp_path / "objects"
    get_store.cache_clear()
    run_jobs(demo.engine)  # the certificate is issued
    with clock.frozen(late), session_scope(demo.engine) as s:
        deadlines.sweep(s)
    assert status(demo, case["number"]) == deadlines.NORMAL


def test_a_case_sent_back_can_be_sent_back_again(demo: Demo) -> None:
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n, v = case["number"], case["version"]
    for t in ("accept", "start_inspection", "inspection_passed"):
        v = demo.fire("陈静", n, t, v)["version"]
    v = demo.fire("陈静", n, "back_to_inspection", v, comment="补拍")["version"]
    # 现场踏勘 was entered from 已受理 going forward: the 退回 into it does not hide that.
    out = demo.fire("陈静", n, "back_to_accepted", v, comment="重新分派")
    assert out["state"]["id"] == "accepted"


def test_a_stored_version_runs_under_rules_added_after_it(demo: Demo) -> None:
    # A version published before refusals had to give reasons (no comment_given on 不予受理).
    old = SRC.replace("version: 4", "version: 9").replace(
        "to: not_accepted, roles: [clerk], guards: [comment_given]", "to: not_accepted, roles: [clerk]")
    with pytest.raises(DefinitionError, match="不予受理须说明理由"):
        catalog.parse(old, "old.yaml")
    with session_scope(demo.engine) as s:
        s.add(ItemVersion(code="GGCSWSXK", version=9, name="公共场所卫生许可", source=old,
                          content_hash="f" * 64, published_at=clock.now(), published_by="history"))
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    assert case["item"]["version"] == 9  # its cases still load and move
    assert demo.fire("陈静", case["number"], "refuse", case["version"])["state"]["id"] == "not_accepted"


@pytest.mark.parametrize("states, message", [
    ("[received, nowhere]", "未知的状态 'nowhere'"),
    ("[received, approved]", "已作出决定或已办结, 不能再撤回"),
])
def test_withdraw_may_only_be_narrowed_to_states_before_the_decision(states: str, message: str) -> None:
    before = "materials:\n"
    text = SRC.replace(before, f"withdraw: {{from: {states}}}\n{before}", 1)
    with pytest.raises(DefinitionError, match=message):
        catalog.parse(text, "ggcs.yaml")
