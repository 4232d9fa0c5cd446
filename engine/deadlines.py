"""Deadlines: the clock stops in states an item marks ``clock: pause`` (补正, 特别程序) and the
promised and legal due dates move out by the working days it stood still; a sweep marks
正常 / 预警 / 逾期 and queues notifications to supervisors once per status change.

``on_advance`` runs inside ``engine.advance``'s transaction, after the case row is written.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.settings import get_settings
from engine.actors import now
from engine.workdays import add_working_days, working_days_between
from states.compiler import CompiledItem
from storage.flow_tables import Notification
from storage.rows import CaseRow
from storage.tables import T_CASE

NORMAL, WARNING, OVERDUE = "正常", "预警", "逾期"


def paused(item: CompiledItem, state: str, branches: dict[str, str] | None) -> bool:
    return any(item.table[n].state.clock == "pause" for n in item.active_names(state, branches))


def _local(at: datetime) -> date:
    return at.astimezone(UTC).date()


def resume(case: CaseRow, at: datetime) -> dict[str, Any]:
    """The deadline columns after the clock restarts at ``at``."""
    since = case["clock_paused_at"]
    days = working_days_between(_local(since), _local(at))
    out: dict[str, Any] = {"clock_paused_at": None, "paused_days": (case.get("paused_days") or 0) + days}
    for col in ("promised_due", "legal_due"):
        if case.get(col) is not None:
            out[col] = add_working_days(case[col], days)
    return out


def on_advance(session: Session, item: CompiledItem, case: CaseRow, before_state: str,
               before_branches: dict[str, str] | None, at: datetime) -> None:
    """Pause or resume the case's clock when an advance crosses a pausing state's boundary."""
    was, now_paused = paused(item, before_state, before_branches), paused(item, case["state"], case["branches"])
    values: dict[str, Any] = {}
    if now_paused and not was and case.get("clock_paused_at") is None:
        values = {"clock_paused_at": at}
    elif was and not now_paused and case.get("clock_paused_at") is not None:
        values = resume(case, at)
    if values:
        session.execute(sa.update(T_CASE).where(T_CASE.c.id == case["id"]).values(**values))
        case.update(values)


def status_on(due: date | None, today: date, warn_days: int) -> str:
    if due is None:
        return NORMAL
    if today > due:
        return OVERDUE
    return WARNING if working_days_between(today, due) <= warn_days else NORMAL


def sweep(session: Session, today: date | None = None) -> dict[str, int]:
    """Mark every open, running-clock case; queue one supervisor notification per change."""
    today = today or _local(now())
    warn = get_settings().warn_working_days
    rows = session.execute(
        sa.select(T_CASE.c.id, T_CASE.c.number, T_CASE.c.promised_due, T_CASE.c.legal_due,
                  T_CASE.c.deadline_status, T_CASE.c.competent_counter_id)
        .where(T_CASE.c.finished_at.is_(None), T_CASE.c.clock_paused_at.is_(None))
    ).mappings().all()
    counts = {NORMAL: 0, WARNING: 0, OVERDUE: 0, "changed": 0}
    at = now()
    for r in rows:
        status = status_on(r["promised_due"], today, warn)
        if r["legal_due"] is not None and today > r["legal_due"]:
            status = OVERDUE
        counts[status] += 1
        if status == r["deadline_status"]:
            continue
        counts["changed"] += 1
        session.execute(sa.update(T_CASE).where(T_CASE.c.id == r["id"]).values(deadline_status=status))
        if status != NORMAL:
            key = f"deadline:{r['number']}:{status}:{r['promised_due']}"
            exists = session.execute(sa.select(Notification.id).where(
                Notification.dedupe_key == key)).first()
            if exists is None:
                session.add(Notification(
                    dedupe_key=key, case_id=r["id"], audience="supervisor", kind=f"deadline_{status}",
                    created_at=at,
                    message=f"办件 {r['number']} ({r['competent_counter_id']}) {status}: "
                            f"承诺办结日 {r['promised_due']}, 法定办结日 {r['legal_due']}"))
    session.flush()
    return {"normal": counts[NORMAL], "warning": counts[WARNING], "overdue": counts[OVERDUE],
            "changed": counts["changed"]}
