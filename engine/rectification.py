"""整改 of every 差评: due in working days (``rectify_working_days``), done by the counter's
supervisor, followed by a 回访 (contacted, what was done, the applicant's verdict); the counter may
appeal (申诉复核) a mistaken or malicious rating, and a supervisor of the region above decides.

"The region above" is read from the 行政区划代码: a district's city (``3101xx`` → ``310100``), a
city's province (``3701xx``'s ``370000``), a province's nation (``000000``, 全国); the decider must
supervise one of them, so nobody decides an appeal about their own region.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from core.settings import get_settings
from engine import directory, notify, workdays
from engine.actors import Actor
from engine.dashboard import supervised_regions, visible_counters
from engine.errors import Conflict, Forbidden, NotFound
from storage.appointment_tables import T_APPT
from storage.hall_tables import T_EVAL, T_RECT, T_TICKET
from storage.tables import T_CASE, Counter

# The words of the rating, as engine.evaluations labels them (that module imports this one).
LEVEL_WORDS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
REASON_WORDS = {
    "attitude": "服务态度差", "slow": "办理时间长", "many_trips": "多次跑动",
    "unclear": "告知不清楚", "extra_material": "要求额外材料", "not_done": "事情没办成",
    "environment": "窗口环境差", "other": "其他",
}
STATUS_LABELS = {"open": "整改中", "done": "已整改", "appealed": "申诉复核中", "annulled": "申诉成立, 差评已撤销"}


def open_for(session: Session, evaluation_id: int, counter_id: str, at: datetime) -> int:
    """The task, and the mail telling the region's supervisors, in the rating's transaction."""
    due = workdays.calendar(session).add(clock.local_date(at), get_settings().rectify_working_days)
    rect_id = int(session.execute(sa.insert(T_RECT).values(
        evaluation_id=evaluation_id, counter_id=counter_id, status="open", due=due, created_at=at)
        .returning(T_RECT.c.id)).scalar_one())
    rating = session.execute(sa.select(T_EVAL).where(T_EVAL.c.id == evaluation_id)).mappings().one()
    counter = directory.counter(session, counter_id)
    reasons = "、".join(REASON_WORDS.get(r, r) for r in rating["reasons"]) or "未勾选"
    number = ""
    if rating["case_id"] is not None:
        number = session.execute(sa.select(T_CASE.c.number).where(T_CASE.c.id == rating["case_id"])).scalar_one()
    notify.to_supervisors(
        session, f"rectification:{rect_id}:opened", counter_id, "bad_rating",
        f"差评待整改: {counter.name if counter else counter_id}",
        f"{counter.name if counter else counter_id}收到一条差评 ({LEVEL_WORDS.get(rating['level'], '')}"
        f"{', 办件 ' + number if number else ''})。原因: {reasons}。{rating['text'] or ''}\n"
        f"请于 {due} 前完成整改并回访申请人 (整改任务 {rect_id})。", case_id=rating["case_id"])
    return rect_id


def _applicant_phone(session: Session, evaluation_id: int) -> tuple[str | None, int | None]:
    """The rater's phone when one is known: the case's applicant, or the booking behind the ticket."""
    rating = session.execute(sa.select(T_EVAL.c.case_id, T_EVAL.c.ticket_id)
                             .where(T_EVAL.c.id == evaluation_id)).one()
    if rating.case_id is not None:
        applicant = session.execute(sa.select(T_CASE.c.applicant).where(T_CASE.c.id == rating.case_id)).scalar_one()
        return (applicant or {}).get("phone"), rating.case_id
    if rating.ticket_id is not None:
        phone = session.execute(sa.select(T_APPT.c.phone).join(T_TICKET, T_TICKET.c.appointment_id == T_APPT.c.id)
                                .where(T_TICKET.c.id == rating.ticket_id)).scalar_one_or_none()
        return phone, None
    return None, None


NATIONAL_REGION = "000000"  # 全国: the level above every province (直辖市 included)


def regions_above(code: str) -> set[str]:
    """Every level above a 行政区划代码: a township's county (the 12-digit 统计用区划代码), its city,
    its province, and the national level above a province, so an appeal of a province-level counter
    has a region above to decide it as well."""
    county = code[:6]
    out = {NATIONAL_REGION}
    if code[6:].strip("0"):
        out.add(county)
    if county[4:] != "00":
        out.add(county[:4] + "00")
    if county[2:] != "0000":
        out.add(county[:2] + "0000")
    out.discard(code)
    return out


def _row(session: Session, rect_id: int) -> Any:
    row = session.execute(sa.select(T_RECT).where(T_RECT.c.id == rect_id).with_for_update()).mappings().first()
    if row is None:
        raise NotFound("没有该整改任务")
    return row


def _region(session: Session, counter_id: str) -> str:
    counter = directory.counter(session, counter_id)
    return counter.region_code if counter else ""


def _may_rectify(session: Session, actor: Actor, row: Any) -> None:
    if "supervisor" not in actor.roles or _region(session, row["counter_id"]) not in supervised_regions(session, actor):
        raise Forbidden("只有该窗口所在区域的督查人员可以办理整改", missing=["role:supervisor"])


def rectify(session: Session, actor: Actor, rect_id: int, action: str) -> dict[str, Any]:
    row = _row(session, rect_id)
    _may_rectify(session, actor, row)
    if row["status"] != "open":
        raise Conflict(f"整改任务{STATUS_LABELS[row['status']]}, 不能再整改", field="id")
    session.execute(sa.update(T_RECT).where(T_RECT.c.id == rect_id).values(
        status="done", action=action, done_at=clock.now(), done_by=actor.id))
    # The 差评's follow-up reaches the applicant: what was done, and that a 回访 follows.
    phone, case_id = _applicant_phone(session, row["evaluation_id"])
    counter = directory.counter(session, row["counter_id"])
    notify.to_applicant_phone(
        session, f"rectification:{rect_id}:done:{clock.now().timestamp():.0f}", phone, "rectified",
        f"您对{counter.name if counter else '窗口'}的评价已收到并整改: {action[:200]}。工作人员将回访听取您的意见。",
        case_id=case_id)
    return view(session, rect_id)


def follow_up(session: Session, actor: Actor, rect_id: int, contacted: bool, note: str, verdict: str) -> dict[str, Any]:
    """回访: after the rectification, the applicant is asked; an unsatisfied verdict reopens it."""
    row = _row(session, rect_id)
    _may_rectify(session, actor, row)
    if row["status"] != "done":
        raise Conflict("整改完成后才能回访", field="id")
    values: dict[str, Any] = {"visit_contacted": contacted, "visit_note": note, "visit_verdict": verdict,
                              "visit_at": clock.now()}
    if verdict == "unsatisfied":
        values["status"] = "open"
    session.execute(sa.update(T_RECT).where(T_RECT.c.id == rect_id).values(**values))
    return view(session, rect_id)


def appeal(session: Session, actor: Actor, rect_id: int, reason: str) -> dict[str, Any]:
    """申诉复核: the rated counter's staff appeal a rating they hold mistaken or malicious."""
    row = _row(session, rect_id)
    if actor.counter_id != row["counter_id"]:
        raise Forbidden("只有被评价窗口的人员可以申诉", missing=["counter"])
    if row["appeal_at"] is not None:
        raise Conflict("每条差评只能申诉一次", field="id")
    if row["status"] not in ("open", "done"):
        raise Conflict(f"整改任务{STATUS_LABELS[row['status']]}, 不能申诉", field="id")
    session.execute(sa.update(T_RECT).where(T_RECT.c.id == rect_id).values(
        status="appealed", appeal_reason=reason, appeal_at=clock.now()))
    return view(session, rect_id)


def decide(session: Session, actor: Actor, rect_id: int, upheld: bool, note: str) -> dict[str, Any]:
    row = _row(session, rect_id)
    above = regions_above(_region(session, row["counter_id"]))
    if "supervisor" not in actor.roles or not above & supervised_regions(session, actor):
        raise Forbidden("申诉由上级区域的督查人员复核", missing=["role:supervisor", "region:above"])
    if row["status"] != "appealed":
        raise Conflict("该整改任务没有待复核的申诉", field="id")
    session.execute(sa.update(T_RECT).where(T_RECT.c.id == rect_id).values(
        status="annulled" if upheld else ("done" if row["done_at"] else "open"),
        appeal_decision="upheld" if upheld else "rejected", appeal_note=note,
        appeal_decided_by=actor.id, appeal_decided_at=clock.now()))
    return view(session, rect_id)


def view(session: Session, rect_id: int) -> dict[str, Any]:
    row = session.execute(sa.select(T_RECT).where(T_RECT.c.id == rect_id)).mappings().first()
    if row is None:
        raise NotFound("没有该整改任务")
    overdue = row["status"] in ("open", "appealed") and clock.today() > row["due"]
    return {**{k: row[k] for k in ("id", "evaluation_id", "counter_id", "status", "due", "created_at", "action",
                                   "done_at", "visit_contacted", "visit_note", "visit_verdict", "visit_at",
                                   "appeal_reason", "appeal_at", "appeal_decision", "appeal_note",
                                   "appeal_decided_at")},
            "status_label": STATUS_LABELS[row["status"]], "overdue": overdue}


VERDICT_LABELS = {"satisfied": "满意", "unsatisfied": "不满意"}


def _visible_where(session: Session, actor: Actor) -> Any:
    """The rectifications an actor may read: their counters' (a supervisor's regions, or a clerk's
    own window), and the appeals from the regions below awaiting them or decided by them."""
    regions = supervised_regions(session, actor)
    below = [c for c, r in session.execute(sa.select(Counter.id, Counter.region_code)).all()
             if regions_above(r) & regions] if regions else []
    where = T_RECT.c.counter_id.in_(list(visible_counters(session, actor)))
    if below:
        where = sa.or_(where, sa.and_(T_RECT.c.counter_id.in_(below), sa.or_(
            T_RECT.c.status == "appealed", T_RECT.c.appeal_decided_by == actor.id)))
    return where


def view_for(session: Session, actor: Actor, rect_id: int) -> dict[str, Any]:
    """One rectification, for an actor the listing would show it to (403 otherwise, 404 if none)."""
    rect = view(session, rect_id)
    seen = session.execute(sa.select(T_RECT.c.id).where(T_RECT.c.id == rect_id, _visible_where(session, actor)))
    if seen.first() is None:
        raise Forbidden("该整改任务不属于您的窗口或督查区域", missing=["region"])
    return rect


def listing(session: Session, actor: Actor, limit: int = 200) -> list[dict[str, Any]]:
    """The 差评 the actor deals with: their counters' (a supervisor's regions, or a clerk's own
    window), and the appeals from the regions below awaiting them or decided by them; open ones
    first, by due date.
    Each says what this actor may do with it now."""
    regions = supervised_regions(session, actor)
    where = _visible_where(session, actor)
    order = sa.case((T_RECT.c.status.in_(("open", "appealed")), 0), else_=1)
    rows = session.execute(
        sa.select(T_RECT.c.id, T_EVAL.c.level, T_EVAL.c.reasons, T_EVAL.c.text, T_EVAL.c.channel,
                  T_EVAL.c.created_at.label("rated_at"), T_CASE.c.number)
        .join(T_EVAL, T_EVAL.c.id == T_RECT.c.evaluation_id).outerjoin(T_CASE, T_CASE.c.id == T_EVAL.c.case_id)
        .where(where).order_by(order, T_RECT.c.due, T_RECT.c.id).limit(limit)).all()
    region_of = {c: r for c, r in session.execute(sa.select(Counter.id, Counter.region_code)).all()}
    names = {c: n for c, n in session.execute(sa.select(Counter.id, Counter.name)).all()}
    out = []
    for r in rows:
        rect = view(session, r.id)
        supervises = "supervisor" in actor.roles and region_of.get(rect["counter_id"]) in regions
        decides = "supervisor" in actor.roles and bool(regions_above(region_of.get(rect["counter_id"], "")) & regions)
        out.append({**rect, "level": r.level, "level_label": LEVEL_WORDS[r.level],
                    "reasons": [REASON_WORDS.get(x, x) for x in r.reasons], "text": r.text, "channel": r.channel,
                    "rated_at": r.rated_at, "number": r.number, "counter_name": names.get(rect["counter_id"], ""),
                    "verdict_label": VERDICT_LABELS.get(rect["visit_verdict"] or "", ""),
                    "may_rectify": supervises and rect["status"] == "open",
                    "may_visit": supervises and rect["status"] == "done"
                    and (rect["visit_at"] is None or rect["visit_at"] < rect["done_at"]),
                    "may_appeal": actor.counter_id == rect["counter_id"] and rect["appeal_at"] is None
                    and rect["status"] in ("open", "done"),
                    "may_decide": decides and rect["status"] == "appealed"})
    return out
