"""Tickets at the counter: walk-in numbers (A001 …) per counter, day and item group, check-in of a
booking (a priority ticket, P001 …), 复诊号 for a returning applicant (F001 …, called only by the
case's companion clerk, ahead of the queue), "call next" and what the hall display shows.

Order of calling at a counter: the clerk's own 复诊号 first, then checked-in bookings, then
walk-ins, each by the time taken. The call is one guarded UPDATE (``status = 'waiting'``), so two
clerks calling at once never get the same ticket.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core import clock
from engine import appointments, counter_service, directory
from engine.actors import Actor
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.lifecycle import applicants_case
from storage.appointment_tables import T_APPT
from storage.hall_tables import T_EVAL, T_TICKET
from storage.tables import T_CASE

KIND_LABELS = {"walk_in": "现场取号", "appointment": "预约签到", "returning": "复诊号"}
STATUS_LABELS = {"waiting": "等候中", "called": "已叫号", "done": "已办理", "skipped": "已过号"}
PRIORITY = {"returning": 2, "appointment": 1, "walk_in": 0}


def _counter(session: Session, counter_id: str) -> Any:
    counter = directory.counter(session, counter_id)
    if counter is None:
        raise InvalidInput("counter", f"没有窗口 {counter_id}")
    return counter


def _issue(session: Session, counter_id: str, letter: str, kind: str, **values: Any) -> dict[str, Any]:
    """The next number of the letter today; a racing issuer loses the insert and takes the next."""
    day = clock.today()
    for _ in range(20):
        last = session.execute(sa.select(sa.func.max(T_TICKET.c.number)).where(
            T_TICKET.c.counter_id == counter_id, T_TICKET.c.day == day,
            T_TICKET.c.number.like(f"{letter}%"))).scalar_one_or_none()
        seq = int(last[1:]) + 1 if last else 1
        if seq > 999:
            raise Conflict(f"今日 {letter} 组号码已取完", field="group")
        try:
            with session.begin_nested():
                tid = session.execute(sa.insert(T_TICKET).values(
                    counter_id=counter_id, day=day, number=f"{letter}{seq:03d}", kind=kind,
                    priority=PRIORITY[kind], status="waiting", created_at=clock.now(), **values)
                    .returning(T_TICKET.c.id)).scalar_one()
        except IntegrityError:
            continue
        return view(session, int(tid))
    raise Conflict("取号繁忙, 请重试", field="counter")


def walk_in(session: Session, counter_id: str, group: str | None = None,
            item_code: str | None = None) -> dict[str, Any]:
    """A walk-in number of the item's group (the directory's, else the one asked for, else A),
    within the counter's and the item's hours and daily capacity (engine.counter_service)."""
    _counter(session, counter_id)
    if item_code is not None and item_code not in directory.counter_item_codes(session, counter_id, ("intake",)):
        raise InvalidInput("item", "该窗口不受理此事项")
    own = counter_service.group_of(session, counter_id, item_code) if item_code is not None else None
    group = (group or own or "A").upper()
    if len(group) != 1 or group not in counter_service.GROUP_LETTERS:
        raise InvalidInput("group", "事项分组为 A 至 E 中的一个字母")
    named = counter_service.groups(session, counter_id)
    if named and group not in named:
        raise InvalidInput("group", f"本窗口没有 {group} 组, 可选: {'、'.join(f'{k} {v}' for k, v in named.items())}")
    if own is not None and group != own:
        raise InvalidInput("group", f"该事项在 {own} 组 ({named.get(own, '')}) 取号")
    counter_service.check_walk_in(session, counter_id, item_code)
    return _issue(session, counter_id, group, "walk_in", item_group=group, item_code=item_code)


def check_in(session: Session, actor: Actor, code: str) -> dict[str, Any]:
    """At the counter: the booking's applicant arrives; the booking becomes a priority ticket."""
    booking = appointments.view(session, code)
    if actor.counter_id != booking["counter"]:
        raise Forbidden("只能在预约的窗口签到", missing=["counter"])
    if booking["status"] != "booked":
        raise Conflict(f"该预约{booking['status_label']}, 不能签到", field="code")
    if booking["date"] != clock.today():
        raise Conflict(f"预约日期为 {booking['date']}, 今日不能签到", field="code")
    row = session.execute(sa.select(T_APPT.c.id).where(T_APPT.c.code == booking["code"])).scalar_one()
    done = session.execute(sa.update(T_APPT).where(T_APPT.c.id == row, T_APPT.c.status == "booked")
                           .values(status="checked_in", checked_in_at=clock.now())).rowcount
    if done != 1:
        raise Conflict("该预约已签到", field="code")
    return _issue(session, booking["counter"], "P", "appointment", item_group="P", item_code=booking["item"],
                  appointment_id=row)


def returning(session: Session, number: str, code: str) -> dict[str, Any]:
    """复诊号: the case's companion clerk takes the applicant at their window, no new queue."""
    case = applicants_case(session, number, code)
    clerk_id = case.get("companion_id")
    counter_id = case["intake_counter_id"]
    if clerk_id is None:
        raise Conflict("该办件没有陪办人员, 请现场取号", field="number")
    # Only today's: a 复诊号 left waiting on an earlier day is never called again (call_next takes today's).
    waiting = session.execute(sa.select(T_TICKET.c.id).where(
        T_TICKET.c.case_id == case["id"], T_TICKET.c.day == clock.today(),
        T_TICKET.c.status == "waiting")).scalar_one_or_none()
    if waiting is not None:
        return view(session, int(waiting))
    return _issue(session, counter_id, "F", "returning", item_group="F", item_code=case["item_code"],
                  case_id=case["id"], clerk_id=clerk_id)


def call_next(session: Session, actor: Actor) -> dict[str, Any] | None:
    """The next ticket for this clerk's window; None when nobody waits."""
    if actor.counter_id is None or "clerk" not in actor.roles:
        raise Forbidden("只有窗口收件人员可以叫号", missing=["role:clerk"])
    counter = _counter(session, actor.counter_id)
    for _ in range(10):
        tid = session.execute(
            sa.select(T_TICKET.c.id).where(
                T_TICKET.c.counter_id == actor.counter_id, T_TICKET.c.day == clock.today(),
                T_TICKET.c.status == "waiting",
                sa.or_(T_TICKET.c.clerk_id.is_(None), T_TICKET.c.clerk_id == actor.id))
            .order_by(T_TICKET.c.priority.desc(), T_TICKET.c.created_at, T_TICKET.c.id).limit(1)).scalar_one_or_none()
        if tid is None:
            return None
        took = session.execute(sa.update(T_TICKET).where(T_TICKET.c.id == tid, T_TICKET.c.status == "waiting")
                               .values(status="called", called_at=clock.now(), called_by=actor.id,
                                       window=f"{counter.name} {actor.name}"[:64])).rowcount
        if took == 1:
            return view(session, int(tid))
    raise Conflict("叫号繁忙, 请重试", field="counter")


def finish(session: Session, actor: Actor, ticket_id: int, skipped: bool = False) -> dict[str, Any]:
    ticket = view(session, ticket_id)
    if ticket["called_by"] != actor.id:
        raise Forbidden("只有叫号的人员可以结束该号", missing=["assignee"])
    session.execute(sa.update(T_TICKET).where(T_TICKET.c.id == ticket_id, T_TICKET.c.status == "called")
                    .values(status="skipped" if skipped else "done"))
    return view(session, ticket_id)


def last_called(session: Session, pad: Actor) -> dict[str, Any] | None:
    """The window pad's subject: the ticket its window called last today, served (not 过号) and not
    rated yet; None when there is none."""
    if pad.counter_id is None:
        return None
    rated = sa.select(T_EVAL.c.id).where(T_EVAL.c.ticket_id == T_TICKET.c.id, T_EVAL.c.channel == "window")
    tid = session.execute(sa.select(T_TICKET.c.id).where(
        T_TICKET.c.counter_id == pad.counter_id, T_TICKET.c.day == clock.today(),
        T_TICKET.c.status.in_(("called", "done")), T_TICKET.c.called_by != pad.id, ~rated.exists())
        .order_by(T_TICKET.c.called_at.desc(), T_TICKET.c.id.desc()).limit(1)).scalar_one_or_none()
    return view(session, int(tid)) if tid is not None else None


def _ahead(session: Session, row: Any) -> int:
    """People ahead in the ticket's own queue: today's waiting tickets of the same counter and kind
    (a 复诊号: of the same clerk) issued before it, in the order call_next takes them. A ticket left
    waiting on an earlier day is in no queue any more."""
    if row["status"] != "waiting" or row["day"] != clock.today():
        return 0
    earlier = sa.or_(T_TICKET.c.created_at < row["created_at"],
                     sa.and_(T_TICKET.c.created_at == row["created_at"], T_TICKET.c.id < row["id"]))
    q = sa.select(sa.func.count()).select_from(T_TICKET).where(
        T_TICKET.c.counter_id == row["counter_id"], T_TICKET.c.day == row["day"],
        T_TICKET.c.status == "waiting", T_TICKET.c.kind == row["kind"], earlier)
    if row["clerk_id"] is not None:
        q = q.where(T_TICKET.c.clerk_id == row["clerk_id"])
    return int(session.execute(q).scalar_one())


def _expected(session: Session, row: Any, ahead: int) -> int | None:
    """About how many minutes more a waiting number waits: the people ahead and this one, at the
    counter's pace today (the mean time between its successive calls); None before two calls."""
    if row["status"] != "waiting" or row["day"] != clock.today():
        return None
    calls = list(session.execute(sa.select(T_TICKET.c.called_at).where(
        T_TICKET.c.counter_id == row["counter_id"], T_TICKET.c.day == row["day"],
        T_TICKET.c.called_at.is_not(None)).order_by(T_TICKET.c.called_at)).scalars())
    if len(calls) < 2:
        return None
    pace = (calls[-1] - calls[0]).total_seconds() / 60 / (len(calls) - 1)
    return round((ahead + 1) * pace)


def view(session: Session, ticket_id: int) -> dict[str, Any]:
    row = session.execute(sa.select(T_TICKET).where(T_TICKET.c.id == ticket_id)).mappings().first()
    if row is None:
        raise NotFound("没有该号")
    ahead = _ahead(session, row)
    counter = directory.counter(session, row["counter_id"])
    waited_until = row["called_at"] or (clock.now() if row["status"] == "waiting" and row["day"] == clock.today()
                                        else row["created_at"])
    return {"id": row["id"], "number": row["number"], "kind": row["kind"], "kind_label": KIND_LABELS[row["kind"]],
            "status": row["status"], "status_label": STATUS_LABELS[row["status"]],
            "counter": row["counter_id"], "counter_name": counter.name if counter else row["counter_id"],
            "item": row["item_code"], "group": row["item_group"], "day": row["day"], "ahead": ahead,
            "waited_minutes": max(int((waited_until - row["created_at"]).total_seconds() // 60), 0),
            "expected_minutes": _expected(session, row, ahead),
            "created_at": row["created_at"],
            "called_at": row["called_at"], "called_by": row["called_by"], "window": row["window"]}


def hall(session: Session, counter_ids: list[str] | None = None, limit: int = 8) -> dict[str, Any]:
    """What the hall display shows: the latest calls of today, how many still wait and how long:
    the longest current wait (the oldest waiting number) and today's mean wait from ticket to call."""
    q = sa.select(T_TICKET.c.number, T_TICKET.c.window, T_TICKET.c.called_at).where(
        T_TICKET.c.day == clock.today(), T_TICKET.c.status.in_(("called", "done")))
    w = sa.select(sa.func.count(), sa.func.min(T_TICKET.c.created_at)).where(
        T_TICKET.c.day == clock.today(), T_TICKET.c.status == "waiting")
    c = sa.select(T_TICKET.c.created_at, T_TICKET.c.called_at).where(
        T_TICKET.c.day == clock.today(), T_TICKET.c.called_at.is_not(None))
    if counter_ids:
        q = q.where(T_TICKET.c.counter_id.in_(counter_ids))
        w = w.where(T_TICKET.c.counter_id.in_(counter_ids))
        c = c.where(T_TICKET.c.counter_id.in_(counter_ids))
    calls = [{"number": r.number, "window": r.window or "", "called_at": r.called_at}
             for r in session.execute(q.order_by(T_TICKET.c.called_at.desc(), T_TICKET.c.id.desc()).limit(limit))]
    waiting, oldest = session.execute(w).one()
    waited = [(r.called_at - r.created_at).total_seconds() / 60 for r in session.execute(c)]
    longest = int((clock.now() - oldest).total_seconds() // 60) if oldest is not None else 0
    return {"calls": calls, "waiting": int(waiting), "longest_wait_minutes": max(longest, 0),
            "mean_wait_minutes": round(sum(waited) / len(waited), 1) if waited else None}


def waits(session: Session, since: datetime, counter_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Waiting minutes per counter (for the supervisor's view), of the given counters: from the
    ticket to its call, and from the call to 收件 — the first case the calling clerk took in at that
    counter after the call and before their next one (a call that led to no intake counts for the
    first figure only)."""
    q = sa.select(T_TICKET.c.counter_id, T_TICKET.c.created_at, T_TICKET.c.called_at, T_TICKET.c.called_by).where(
        T_TICKET.c.called_at.is_not(None), T_TICKET.c.created_at >= since)
    if counter_ids is not None:
        q = q.where(T_TICKET.c.counter_id.in_(counter_ids))
    rows = session.execute(q.order_by(T_TICKET.c.called_at)).all()
    intakes: dict[tuple[str, int], list[datetime]] = {}
    if rows:
        cq = sa.select(T_CASE.c.intake_counter_id, T_CASE.c.companion_id, T_CASE.c.created_at).where(
            T_CASE.c.created_at >= rows[0].called_at, T_CASE.c.companion_id.is_not(None))
        if counter_ids is not None:
            cq = cq.where(T_CASE.c.intake_counter_id.in_(counter_ids))
        for c in session.execute(cq.order_by(T_CASE.c.created_at)):
            intakes.setdefault((c.intake_counter_id, c.companion_id), []).append(c.created_at)
    calls: dict[tuple[str, int], list[datetime]] = {}
    for r in rows:
        calls.setdefault((r.counter_id, r.called_by), []).append(r.called_at)
    per: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        figures = per.setdefault(r.counter_id, {"wait": [], "intake": []})
        figures["wait"].append((r.called_at - r.created_at).total_seconds() / 60)
        mine = calls[(r.counter_id, r.called_by)]
        later = [t for t in mine if t > r.called_at]
        until = later[0] if later else None
        taken = next((t for t in intakes.get((r.counter_id, r.called_by), [])
                      if t >= r.called_at and (until is None or t < until)), None)
        if taken is not None:
            figures["intake"].append((taken - r.called_at).total_seconds() / 60)
    return [{"counter": c, "calls": len(v["wait"]), "mean_wait_minutes": round(sum(v["wait"]) / len(v["wait"]), 1),
             "intakes": len(v["intake"]),
             "mean_intake_minutes": round(sum(v["intake"]) / len(v["intake"]), 1) if v["intake"] else None}
            for c, v in sorted(per.items())]
