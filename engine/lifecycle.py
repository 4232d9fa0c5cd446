"""Case actions outside the item's own steps: 延期 (an approver extends the legal period) and
撤回 by the applicant on the progress page (proven by the case's query code)."""

from __future__ import annotations

import hmac
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from core.clock import now
from engine import catalog, deadlines, documents, workdays
from engine.actors import Actor
from engine.advance import (
    advance,
    append_event,
    enqueue_documents,
    find_route,
    holder_counters,
    load_case,
    new_job,
    regions_of,
    why_forbidden,
)
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.intake import hash_query_code
from engine.statements import INSERT_OUTBOX
from states.compiler import CompiledItem
from states.defaults import WITHDRAW
from storage.rows import CaseRow, NewHistoryEvent
from storage.tables import T_CASE


def extend(session: Session, number: str, actor: Actor, reason: str, expected_version: int | None = None) -> CaseRow:
    """延期 (行政许可法 art. 42): the competent counter's approver moves the legal due date out by the
    item's ``extension_days`` working days, once per case, before it passes; the applicant is told."""
    case = load_case(session, number, lock=True)
    item = catalog.compiled(session, case["item_version_id"])
    days = item.definition.limits.extension_days
    why = can_extend(item, case, actor)
    if why is not None:
        if "approver" not in actor.roles or actor.counter_id != case["competent_counter_id"]:
            raise Forbidden(why, missing=["role:approver" if "approver" not in actor.roles
                                          else f"counter:{case['competent_counter_id']}"])
        raise Conflict(why, field="number")
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason", "延期须说明理由")
    values = deadlines.extend(workdays.calendar(session), case, days)
    at = now()
    data = {"days": days, "legal_due_before": case["legal_due"].isoformat(),
            "legal_due": values["legal_due"].isoformat(), "approver": actor.name}
    append_event(session, case, expected_version, at, "extension", actor, data, reason)
    session.execute(sa.update(T_CASE).where(T_CASE.c.id == case["id"]).values(**values))
    case.update(values)  # type: ignore[typeddict-item]
    event: NewHistoryEvent = {"kind": "extension", "seq": case["version"], "at": at, "actor_id": actor.id,
                              "actor_name": actor.name, "counter_id": actor.counter_id, "comment": reason,
                              "data": data}
    enqueue_documents(session, case, documents.issue_at(session, item, case, [event], actor), at)  # 延期通知书
    _notify(session, case, "extension", at,
            f"经审批, 办理期限延长 {days} 个工作日, 法定办结日为 {values['legal_due']:%Y年%m月%d日}。理由：{reason}")
    return case


def _notify(session: Session, case: CaseRow, why: str, at: datetime, note: str) -> None:
    """Queue the applicant's notice at the holding counter's region (the notify_applicant job)."""
    item = catalog.compiled(session, case["item_version_id"])
    counter = (holder_counters(item, case) or [case["competent_counter_id"]])[0]
    INSERT_OUTBOX.execute(session, new_job(case, "notify_applicant", regions_of(session, {counter})[counter], counter,
                                           at, {"number": case["number"], "trigger": why, "from": case["state"],
                                                "to": case["state"], "from_counter": counter,
                                                "to_counter": counter, "note": note}))


def applicant(case: CaseRow) -> Actor:
    name = (case["applicant"] or {}).get("name") or "申请人"
    return Actor(None, f"{name}(申请人)", None, None, frozenset({"applicant"}))


def applicant_may_withdraw(item: CompiledItem, case: CaseRow) -> bool:
    route = find_route(item, case, WITHDRAW)
    return route is not None and not why_forbidden(item, case, route[0], route[1], applicant(case))


def can_extend(item: CompiledItem, case: CaseRow, actor: Actor) -> str | None:
    """Why 延期 is not open to ``actor`` now (zh-CN), or None when it is."""
    days = item.definition.limits.extension_days
    if "approver" not in actor.roles:
        return "延期须由审批签发人员决定"
    if actor.counter_id != case["competent_counter_id"]:
        return "延期须由办理地窗口决定"
    if days <= 0:
        return f"事项「{item.definition.name}」不允许延期"
    if item.table[case["state"]].state.final or case["state"] in item.decided:
        return "办件已作出决定, 不能再延期"
    if case["legal_due"] is None:
        return "办件尚未受理, 办理时限还未开始计算"
    if case["extended_days"]:
        return f"办件已延期 {case['extended_days']} 个工作日, 每件只能延期一次"
    if clock.today() > case["legal_due"]:
        return f"法定办结日 {case['legal_due']} 已过, 不能再延期"
    return None


def applicants_case(session: Session, number: str, code: str) -> CaseRow:
    """The case whose query code this is; a wrong code looks exactly like an unknown number."""
    try:
        case = load_case(session, number)
    except NotFound:
        case = None
    if case is None or not hmac.compare_digest(case["query_code_hash"], hash_query_code(number, code)):
        raise NotFound("未找到该办件, 请核对办件编号和查询码")
    return case


def withdraw_by_applicant(session: Session, number: str, code: str, reason: str) -> CaseRow:
    """撤回 on the progress page: the query code proves it is the applicant."""
    case = applicants_case(session, number, code)
    item = catalog.compiled(session, case["item_version_id"])
    if not applicant_may_withdraw(item, case):
        raise Conflict("该办件已不能撤回 (已撤回、已作出决定或已办结)", field="number")
    return advance(session, number, WITHDRAW, applicant(case), {"comment": reason.strip() or None})
