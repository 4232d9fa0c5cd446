"""好差评 (国办发〔2019〕51号; GB/T 39734-2020): the applicant rates 1–5, with reasons for the
last two (a checklist and text). 一事一评: per case at 办结, proved by the case's query code (the
progress page, the QR code on the 收件凭证). 一次一评: per visit at the window's evaluation pad (a
tablet signed in with an account of its own, role ``pad``), for a ticket its window served that
day, never by the clerk who served it. One rating per case (or visit) and channel: the second is
refused by the unique constraint, whoever races.

A 差评 (不满意, 非常不满意) opens a rectification task (engine.rectification).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import clock, wire
from engine import directory, rectification, tickets
from engine.actors import Actor
from engine.dashboard import visible_counters
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.lifecycle import applicants_case
from storage.hall_tables import T_EVAL, T_RECT
from storage.tables import T_CASE, ItemVersion

T_IV = ItemVersion.__table__

LEVELS = rectification.LEVEL_WORDS
BAD = (1, 2)
REASONS = rectification.REASON_WORDS
CHANNEL_LABELS = {"case": "一事一评", "window": "一次一评 (窗口评价器)"}


def _check(level: int, reasons: list[str], text: str) -> None:
    if level not in LEVELS:
        raise InvalidInput("level", "评价等级为 1 至 5")
    unknown = [r for r in reasons if r not in REASONS]
    if unknown:
        raise InvalidInput("reasons", f"未知的原因: {', '.join(unknown)}")
    if level in BAD and not reasons and not text.strip():
        raise InvalidInput("reasons", f"{LEVELS[level]}时请勾选或填写原因")
    if level not in BAD and (reasons or text.strip()):
        raise InvalidInput("reasons", "只有不满意或非常不满意时填写原因")


def _insert(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    at = clock.now()
    try:
        with session.begin_nested():
            eid = int(session.execute(sa.insert(T_EVAL).values(**values, created_at=at)
                                      .returning(T_EVAL.c.id)).scalar_one())
    except IntegrityError as exc:
        raise Conflict("已评价过, 每件 (每次) 只能评价一次", field="number") from exc
    if values["level"] in BAD:
        rectification.open_for(session, eid, values["counter_id"], at)
    return view(session, eid)


def rate_case(session: Session, number: str, code: str, level: int, reasons: list[str], text: str) -> dict[str, Any]:
    """一事一评: the query code proves the applicant; the case must be 办结."""
    _check(level, reasons, text)
    case = applicants_case(session, number, code)
    if case["finished_at"] is None:
        raise Conflict("办件办结后才能评价", field="number")
    return _insert(session, {"subject": f"case:{case['id']}", "channel": "case", "level": level,
                             "reasons": reasons, "text": text.strip(), "case_id": case["id"],
                             "item_code": case["item_code"], "counter_id": case["intake_counter_id"],
                             "clerk_id": case.get("companion_id")})


def case_rating(session: Session, number: str, code: str) -> dict[str, Any] | None:
    """The case's 一事一评, once given (the progress page shows it instead of the form)."""
    case = applicants_case(session, number, code)
    eid = session.execute(sa.select(T_EVAL.c.id).where(T_EVAL.c.subject == f"case:{case['id']}",
                                                       T_EVAL.c.channel == "case")).scalar_one_or_none()
    return view(session, int(eid)) if eid is not None else None


def rate_visit(session: Session, pad: Actor, ticket_id: int, level: int, reasons: list[str],
               text: str) -> dict[str, Any]:
    """一次一评 at the window's pad (an account of role ``pad``): a ticket its window served today,
    never by the clerk who served it, never a 过号."""
    _check(level, reasons, text)
    ticket = tickets.view(session, ticket_id)
    if ticket["called_by"] is not None and ticket["called_by"] == pad.id:
        raise Forbidden("窗口人员不能评价自己办理的号, 请申请人在窗口评价器上评价", missing=["role:pad"])
    if "pad" not in pad.roles:
        raise Forbidden("一次一评只能在窗口评价器上进行", missing=["role:pad"])
    if pad.counter_id is None or ticket["counter"] != pad.counter_id or ticket["called_by"] is None:
        raise Forbidden("只能在办理该号的窗口评价器上评价", missing=["counter"])
    if ticket["day"] != clock.today():
        raise Conflict(f"该号是 {ticket['day']} 的号, 只能评价当日的办理", field="ticket")
    if ticket["status"] == "skipped":
        raise Conflict("该号已过号, 没有办理, 不能评价", field="ticket")
    return _insert(session, {"subject": f"ticket:{ticket_id}", "channel": "window", "level": level,
                             "reasons": reasons, "text": text.strip(), "ticket_id": ticket_id,
                             "item_code": ticket["item"], "counter_id": ticket["counter"],
                             "clerk_id": ticket["called_by"]})


def view(session: Session, eid: int) -> dict[str, Any]:
    row = session.execute(sa.select(T_EVAL).where(T_EVAL.c.id == eid)).mappings().one()
    rect = session.execute(sa.select(T_RECT.c.id).where(T_RECT.c.evaluation_id == eid)).scalar_one_or_none()
    return {"id": row["id"], "channel": row["channel"], "channel_label": CHANNEL_LABELS[row["channel"]],
            "level": row["level"], "level_label": LEVELS[row["level"]], "reasons": list(row["reasons"]),
            "text": row["text"], "counter": row["counter_id"], "item": row["item_code"],
            "created_at": row["created_at"], "rectification_id": rect}


def summary(session: Session, actor: Actor, by: str) -> list[dict[str, Any]]:
    """Satisfaction per counter, clerk or item within the actor's counters; 差评 open and overdue."""
    counters = visible_counters(session, actor)
    col = {"counter": T_EVAL.c.counter_id, "clerk": T_EVAL.c.clerk_id, "item": T_EVAL.c.item_code}[by]
    rows = session.execute(sa.select(col.label("key"), T_EVAL.c.level, T_RECT.c.status, T_RECT.c.due)
                           .outerjoin(T_RECT, T_RECT.c.evaluation_id == T_EVAL.c.id)
                           .where(T_EVAL.c.counter_id.in_(list(counters)))).all()
    today = clock.today()
    out: dict[Any, dict[str, Any]] = {}
    for r in rows:
        s = out.setdefault(r.key, {"key": "" if r.key is None else str(r.key), "count": 0, "satisfied": 0,
                                   "bad": 0, "bad_open": 0, "bad_overdue": 0, "annulled": 0})
        if r.status == "annulled":
            s["annulled"] += 1
            continue
        s["count"] += 1
        s["satisfied"] += r.level >= 3
        if r.level in BAD:
            s["bad"] += 1
            if r.status in ("open", "appealed"):
                s["bad_open"] += 1
                s["bad_overdue"] += today > r.due
    names: dict[Any, str] = {}
    if by == "counter":
        names = {k: v["name"] for k, v in counters.items()}
    elif by == "clerk":
        names = {str(k): v for k, v in directory.clerk_names(session, [k for k in out if k is not None]).items()}
    result = []
    for s in out.values():
        s["name"] = names.get(s["key"], s["key"])
        s["rate"] = round(s["satisfied"] / s["count"], 4) if s["count"] else None
        result.append(s)
    return sorted(result, key=lambda s: s["key"])


CSV_HEADER = ["办件编号", "事项编码", "事项版本", "部门", "区划", "窗口人员", "评价渠道", "评价等级", "评价时间",
              "申诉撤销"]


def export_csv(session: Session, actor: Actor) -> str:
    """Ratings in the national report's shape, for a supervisor's counters. A 差评 annulled on appeal
    (申诉成立) stays in the file, marked in the last column, so the report still adds up."""
    if "supervisor" not in actor.roles:
        raise Forbidden("只有督查人员可以导出评价数据", missing=["role:supervisor"])
    counters = visible_counters(session, actor)
    q = (sa.select(T_EVAL, T_CASE.c.number, T_IV.c.version.label("item_version"), T_RECT.c.status.label("rect"))
         .outerjoin(T_RECT, T_RECT.c.evaluation_id == T_EVAL.c.id)
         .outerjoin(T_CASE, T_CASE.c.id == T_EVAL.c.case_id)
         .outerjoin(T_IV, T_IV.c.id == T_CASE.c.item_version_id)
         .where(T_EVAL.c.counter_id.in_(list(counters))).order_by(T_EVAL.c.created_at, T_EVAL.c.id))
    rows = session.execute(q).mappings().all()
    clerks = directory.clerk_names(session, [r["clerk_id"] for r in rows])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEADER)
    for r in rows:
        counter = directory.counter(session, r["counter_id"])
        w.writerow([r["number"] or "", r["item_code"] or "", r["item_version"] or "",
                    counter.unit if counter else "", counter.region_code if counter else "",
                    clerks.get(r["clerk_id"], "") if r["clerk_id"] else "", CHANNEL_LABELS[r["channel"]],
                    LEVELS[r["level"]], wire.instant(r["created_at"]), "是" if r["rect"] == "annulled" else "否"])
    return buf.getvalue()
