"""The law's periods on a case, in working days of the official calendar (行政许可法).

- 收件 starts the five days within which every missing material must be notified at once
  (art. 32: ``supplement_notice_due``).
- 受理 — the first step out of the intake phase (``states.phases``) — starts the decision
  periods (art. 42): the counter's promise (``promised_due``) and the law's (``legal_due``).
- The clock stops in states an item marks ``clock: pause`` (补正, 特别程序: art. 45); when it
  restarts, both due dates move out by the working days it stood still.
- 延期 adds the item's ``extension_days`` to the legal period, once (art. 42).
- The decision — entering a state from which no refusal is reachable — makes the certificate
  due within ten working days (art. 44).
- A due date that runs into a year without an official schedule is *provisional*, and is
  recomputed when that year's schedule is published.

A sweep marks 正常 / 预警 / 逾期 and queues notifications to supervisors once per status change.
``on_advance`` runs inside ``engine.advance``'s transaction, after the case row is written.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from core.clock import now
from core.settings import get_settings
from engine import catalog, workdays
from engine.statements import PERIOD_COLUMNS, UPDATE_PERIODS
from engine.workdays import WorkCalendar
from states.compiler import CompiledItem
from storage.flow_tables import T_CERT, Notification
from storage.rows import CaseRow
from storage.tables import T_CASE, Counter

NORMAL, WARNING, OVERDUE = "正常", "预警", "逾期"
SUPPLEMENT_NOTICE_DAYS = 5  # art. 32: 一次性告知补正 within five days of 收件
CERTIFICATE_DAYS = 10  # art. 44: the certificate within ten days of the decision


def paused(item: CompiledItem, state: str, branches: dict[str, str] | None) -> bool:
    return any(item.table[n].state.clock == "pause" for n in item.active_names(state, branches))


def at_intake(cal: WorkCalendar, at: datetime) -> dict[str, Any]:
    """The periods a case has from 收件: the notice of missing materials."""
    day = clock.local_date(at)
    due = cal.add(day, SUPPLEMENT_NOTICE_DAYS)
    return {"supplement_notice_due": due, "deadline_provisional": cal.provisional(day, due)}


def decision_periods(cal: WorkCalendar, item: CompiledItem, accepted: date, paused_days: int,
                     extended_days: int) -> dict[str, Any]:
    """The due dates counted from 受理, with the clock's stops and any 延期 added."""
    limits = item.definition.limits
    promised = cal.add(accepted, limits.promised_days + paused_days)
    legal = cal.add(accepted, limits.legal_days + paused_days + extended_days)
    return {"promised_due": promised, "legal_due": legal, "deadline_provisional": cal.provisional(accepted, legal)}


def _resume(cal: WorkCalendar, case: CaseRow, at: datetime) -> dict[str, Any]:
    """The deadline columns after the clock restarts at ``at``."""
    since = case["clock_paused_at"]
    assert since is not None
    days = cal.between(clock.local_date(since), clock.local_date(at))
    out: dict[str, Any] = {"clock_paused_at": None}
    if case.get("accepted_at") is None:
        return out  # 补正 before 受理: no decision period runs yet, so none is extended
    out["paused_days"] = (case.get("paused_days") or 0) + days
    for col in ("promised_due", "legal_due"):
        due = case.get(col)
        if due is not None:
            out[col] = cal.add(due, days)  # type: ignore[arg-type]
            out["deadline_provisional"] = case.get("deadline_provisional") or cal.provisional(due, out[col])  # type: ignore[arg-type]
    return out


def on_advance(session: Session, item: CompiledItem, case: CaseRow, before_state: str,
               before_branches: dict[str, str] | None, at: datetime) -> None:
    """Start the decision periods at 受理, the certificate's at the decision, and pause or resume
    the clock when an advance crosses a pausing state's boundary."""
    values: dict[str, Any] = {}
    cal: WorkCalendar | None = None
    state = case["state"]
    final = item.table[state].state.final
    if case.get("accepted_at") is None and before_state in item.intake_phase and state not in item.intake_phase \
            and not final:
        cal = workdays.calendar(session)
        values = {"accepted_at": at, **decision_periods(cal, item, clock.local_date(at), 0, 0)}
    if case.get("certificate_due") is None and state in item.decided and before_state not in item.decided:
        cal = cal or workdays.calendar(session)
        day = clock.local_date(at)
        due = cal.add(day, CERTIFICATE_DAYS)
        values["certificate_due"] = due
        values["deadline_provisional"] = values.get("deadline_provisional", case.get("deadline_provisional")) \
            or cal.provisional(day, due)
    was, now_paused = paused(item, before_state, before_branches), paused(item, state, case["branches"])
    if now_paused and not was and case.get("clock_paused_at") is None:
        values["clock_paused_at"] = at
        if case.get("accepted_at") is None and case.get("supplement_notice_due") is not None:
            values["supplement_notice_due"] = None  # 一次性告知 given: the five days are met
    elif was and not now_paused and case.get("clock_paused_at") is not None:
        values.update(_resume(cal or workdays.calendar(session), {**case, **values}, at))  # type: ignore[typeddict-item]
    if values:
        case.update(values)  # type: ignore[typeddict-item]
        UPDATE_PERIODS.execute(session, {"case_id": case["id"], **{c: case[c] for c in PERIOD_COLUMNS}})  # type: ignore[literal-required]


def extend(cal: WorkCalendar, case: CaseRow, days: int) -> dict[str, Any]:
    """延期: the legal due date ``days`` working days later (once per case)."""
    due = case.get("legal_due")
    assert due is not None
    legal = cal.add(due, days)
    return {"legal_due": legal, "extended_days": days,
            "deadline_provisional": case.get("deadline_provisional") or cal.provisional(due, legal)}


def recompute_provisional(session: Session) -> int:
    """Once a year's schedule is published: every open case whose due dates were provisional gets
    them again from its anchors — 收件 (the notice, while it runs) and 受理 with the clock's stops
    and any 延期. The rows are locked: an advance in between waits instead of being overwritten.

    Not recomputed (kept provisional while their years are): the certificate's due date, whose
    anchor (the decision's day) is not stored, and the number of working days a clock stood still.
    """
    cal = workdays.calendar(session)
    rows = session.execute(sa.select(T_CASE).where(T_CASE.c.finished_at.is_(None),
                                                   T_CASE.c.deadline_provisional.is_(True))
                           .with_for_update()).mappings().all()
    for r in rows:
        item = catalog.compiled(session, r["item_version_id"])
        values: dict[str, Any] = {}
        provisional = False
        if r["accepted_at"] is None:
            if r["supplement_notice_due"] is not None:
                values = at_intake(cal, r["created_at"])
                provisional = values["deadline_provisional"]
        else:
            values = decision_periods(cal, item, clock.local_date(r["accepted_at"]), r["paused_days"] or 0,
                                      r["extended_days"] or 0)
            provisional = values["deadline_provisional"]
        due = r["certificate_due"]
        if due is not None:  # the certificate's period began at most a month before its due date
            provisional = provisional or cal.provisional(due - timedelta(days=31), due)
        values["deadline_provisional"] = provisional
        session.execute(sa.update(T_CASE).where(T_CASE.c.id == r["id"]).values(**values))
    return len(rows)


def running_due() -> Any:
    """In SQL: the due date of the period that runs — the decision's from 受理, before it the
    notice of missing materials (cleared once the notice is given)."""
    return sa.func.coalesce(T_CASE.c.promised_due, T_CASE.c.supplement_notice_due)


def status_on(cal: WorkCalendar, due: date | None, today: date, warn_days: int) -> str:
    if due is None:
        return NORMAL
    if today > due:
        return OVERDUE
    return WARNING if cal.between(today, due) <= warn_days else NORMAL


def sweep(session: Session, today: date | None = None) -> dict[str, int]:
    """Mark every open, running-clock case; queue one supervisor notification per change. Before
    受理 the period that runs is the five days to notify missing materials."""
    cal = workdays.calendar(session)
    today = today or clock.today()
    warn = get_settings().warn_working_days
    certified = sa.exists().where(T_CERT.c.case_id == T_CASE.c.id)
    rows = session.execute(
        sa.select(T_CASE.c.id, T_CASE.c.number, T_CASE.c.promised_due, T_CASE.c.legal_due,
                  T_CASE.c.supplement_notice_due, T_CASE.c.accepted_at, T_CASE.c.certificate_due,
                  certified.label("certified"), T_CASE.c.deadline_status, Counter.name.label("counter"))
        .join(Counter, Counter.id == T_CASE.c.competent_counter_id)
        .where(T_CASE.c.finished_at.is_(None), T_CASE.c.clock_paused_at.is_(None))
    ).mappings().all()
    counts = {NORMAL: 0, WARNING: 0, OVERDUE: 0, "changed": 0}
    at = now()
    for r in rows:
        accepted = r["accepted_at"] is not None
        decided = r["certificate_due"] is not None  # the decision was made in time or late, but made
        if decided:
            due = None if r["certified"] else r["certificate_due"]  # then the certificate's ten days run
        else:
            due = r["promised_due"] if accepted else r["supplement_notice_due"]
        status = status_on(cal, due, today, warn)
        if not decided and r["legal_due"] is not None and today > r["legal_due"]:
            status = OVERDUE
        counts[status] += 1
        if status == r["deadline_status"]:
            continue
        counts["changed"] += 1
        session.execute(sa.update(T_CASE).where(T_CASE.c.id == r["id"]).values(deadline_status=status))
        if status != NORMAL:
            key = f"deadline:{r['number']}:{status}:{due}"
            exists = session.execute(sa.select(Notification.id).where(
                Notification.dedupe_key == key)).first()
            if exists is None:
                what = (f"证照制发期限 {r['certificate_due']}" if decided
                        else f"承诺办结日 {r['promised_due']}, 法定办结日 {r['legal_due']}" if accepted
                        else f"尚未受理, 一次性告知补正期限 {r['supplement_notice_due']}")
                session.add(Notification(
                    dedupe_key=key, case_id=r["id"], audience="supervisor", kind=f"deadline_{status}",
                    created_at=at, message=f"办件 {r['number']} ({r['counter']}) {status}: {what}"))
    session.flush()
    return {"normal": counts[NORMAL], "warning": counts[WARNING], "overdue": counts[OVERDUE],
            "changed": counts["changed"]}
