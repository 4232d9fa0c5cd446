"""Supervisor dashboard read model: open cases, deadlines, throughput, hand-offs, workloads.

Every query is scoped to the counters of the regions the supervisor watches
(``supervisor_regions``); a supervisor with no region sees nothing. Open cases are read through
``case_holders`` (only open cases have holders), so the big ``cases`` table is only touched by
index for the open set, the at-risk and stuck lists, and the period's throughput.
"""

from __future__ import annotations

import gc
import heapq
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlmodel import Session

from core import clock, wire
from core.settings import get_settings
from engine import catalog, deadlines, workdays
from engine.actors import Actor
from engine.advance import companion_step
from engine.errors import Forbidden, InvalidInput
from storage.dashboard_tables import T_SUP, SupervisorRegion
from storage.db import bound_engine
from storage.rows import CaseRow
from storage.tables import T_CASE, T_HIST, T_HOLD, T_OUT, Clerk, Counter, ItemVersion, Region

LIST_LIMIT = 50


# --- who sees what -------------------------------------------------------------------------

def set_supervised_regions(session: Session, clerk: Clerk, regions: list[str], *, exactly: bool = False) -> None:
    """Give a supervisor the regions they watch (idempotent). ``exactly``: these and no others —
    the directory's list replaces what an earlier version (or the CLI) gave, so a region taken
    from a supervisor, or a supervisor role taken from a clerk, stops showing its cases."""
    if exactly:
        keep = [str(c) for c in regions] if "supervisor" in clerk.roles.split(",") else []
        session.execute(sa.delete(T_SUP).where(T_SUP.c.clerk_id == clerk.id, T_SUP.c.region_code.not_in(keep)))
    if not regions:
        return
    if "supervisor" not in clerk.roles.split(","):
        raise InvalidInput("regions", f"{clerk.name} 不是督查人员, 不能分配督查区域")
    for code in regions:
        if session.get(Region, str(code)) is None:
            raise InvalidInput("regions", f"未知的行政区划 {code}")
        session.merge(SupervisorRegion(clerk_id=clerk.id, region_code=str(code)))
    session.flush()


def supervised_regions(session: Session, actor: Actor) -> set[str]:
    if actor.id is None or "supervisor" not in actor.roles:
        return set()
    return set(session.execute(
        sa.select(T_SUP.c.region_code).where(T_SUP.c.clerk_id == actor.id)).scalars())


def visible_counters(session: Session, actor: Actor) -> dict[str, dict[str, str]]:
    """Counters the actor may look at: a supervisor's regions' counters, else the own counter."""
    q = sa.select(Counter.id, Counter.name, Counter.region_code)
    if "supervisor" in actor.roles:
        q = q.where(Counter.region_code.in_(supervised_regions(session, actor)))
    else:
        q = q.where(Counter.id == actor.counter_id)
    return {r.id: {"name": r.name, "region": r.region_code}
            for r in session.execute(q.order_by(Counter.id))}


def supervisor_may_see(session: Session, actor: Actor, case: CaseRow) -> bool:
    """A supervisor sees a case when one of its counters lies in a region they supervise."""
    parties = set(case["parties"].values())
    regions = supervised_regions(session, actor)
    if not parties or not regions:
        return False
    hit = session.execute(sa.select(Counter.id).where(
        Counter.id.in_(parties), Counter.region_code.in_(regions)).limit(1)).first()
    return hit is not None


def check_case_visible(session: Session, actor: Actor, case: CaseRow) -> None:
    own = actor.counter_id is not None and actor.counter_id in case["parties"].values()
    if "supervisor" in actor.roles and not own and not supervisor_may_see(session, actor, case):
        raise Forbidden("该办件不在您督查的区域内", missing=["region"])


def check_counter_visible(session: Session, actor: Actor, counter_id: str) -> None:
    if counter_id == actor.counter_id:
        return
    if "supervisor" in actor.roles and counter_id not in visible_counters(session, actor):
        raise Forbidden(f"窗口 {counter_id} 不在您督查的区域内", missing=["region"])


# --- time ------------------------------------------------------------------------------------

def deadline_status(due: date | None, today: date, warn_cutoff: date) -> str:
    if due is None or due > warn_cutoff:
        return "正常"
    return "逾期" if due < today else "预警"


# How far back the Prefect UI looks for a case's runs (its own default is the last 7 days; a
# case with 补正 or 特别程序 can run for months).
PREFECT_SPAN_SECONDS = 366 * 86_400


def prefect_runs_url(number: str) -> str | None:
    """The case's task runs in the Prefect UI, or None when no UI is configured (empty
    ``TONGBAN_PREFECT_UI_URL``). Every job's task run is named ``<number> · <job>`` (flows.drain),
    so the link searches the names; only where every task run is tagged for sure
    (``TONGBAN_JOB_TASK_TAGS=true``) does it filter on the tag ``case:<number>`` instead."""
    base = get_settings().prefect_ui_url.strip().rstrip("/")
    if not base:
        return None
    query = {"tab": "task-runs", "type": "span", "seconds": str(-PREFECT_SPAN_SECONDS)}
    if get_settings().job_task_tags:
        query["tag"] = case_tag(number)
    else:
        query["task-run-search"] = number
    return f"{base}/runs?{urlencode(query)}"


def case_tag(number: str) -> str:
    """The Prefect tag of every task run done for the case."""
    return f"case:{number}"


# --- the dashboard -------------------------------------------------------------------------

def _states(session: Session) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]], set[tuple[str, str]]]:
    """(item code, state id) → label; the states whose clock is stopped (补正, 特别程序); and the
    companion's states (the intake counter's), across every published version."""
    labels: dict[tuple[str, str], str] = {}
    paused: set[tuple[str, str]] = set()
    companion: set[tuple[str, str]] = set()
    for vid, code in session.execute(sa.select(ItemVersion.id, ItemVersion.code).order_by(ItemVersion.version)):
        item = catalog.compiled(session, vid)
        for name, ref in item.table.items():
            labels[(code, name)] = ref.state.label
            if ref.state.clock == "pause":
                paused.add((code, name))
            if not ref.state.parallel and companion_step(item, name):
                companion.add((code, name))
    return labels, paused, companion


def _scope(session: Session, actor: Actor, region: str | None, counter: str | None) -> dict[str, dict[str, str]]:
    counters = visible_counters(session, actor)
    if region:
        if region not in supervised_regions(session, actor):
            raise Forbidden(f"区域 {region} 不在您督查的范围内", missing=["region"])
        counters = {k: v for k, v in counters.items() if v["region"] == region}
    if counter:
        if counter not in counters:
            raise Forbidden(f"窗口 {counter} 不在您督查的区域内", missing=["region"])
        counters = {counter: counters[counter]}
    return counters


def _seconds(end: Any, start: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def _assignee_expr(dialect: str) -> Any:
    """The clerk assigned at the holding counter: ``assignees[holder counter]`` (JSON)."""
    if dialect == "postgresql":
        return T_CASE.c.assignees.op("->>")(T_HOLD.c.counter_id)
    return sa.func.json_extract(T_CASE.c.assignees, sa.literal('$."') + T_HOLD.c.counter_id + sa.literal('"'))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Tens of thousands of short-lived row tuples set off full cyclic-GC passes that doubled the
    dashboard's tail latency (measured: p95 96 → 43 ms of CPU). They hold no cycles, so
    reference counting frees them; the collector resumes right after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


def dashboard(session: Session, actor: Actor, *, region: str | None = None, counter: str | None = None,
              item: str | None = None, days: int = 30, today: date | None = None) -> dict[str, Any]:
    if "supervisor" not in actor.roles:
        raise Forbidden("看板仅供督查人员使用", missing=["role:supervisor"])
    if not 1 <= days <= 366:
        raise InvalidInput("days", "统计周期须为 1 到 366 天")
    settings = get_settings()
    today = today or clock.today()
    # 预警: at most N working days left, i.e. due before the (N+1)th working day (as engine.deadlines).
    cal = workdays.calendar(session)
    warn_cutoff = cal.add(today, settings.warn_working_days + 1) - timedelta(days=1)
    stuck_before = clock.start_of(cal.before(today, settings.stuck_working_days))
    since = clock.start_of(today - timedelta(days=days - 1))
    counters = _scope(session, actor, region, counter)
    scope = list(counters)
    dialect = bound_engine(session).dialect.name
    labels, paused, companion = _states(session)
    in_scope = T_HOLD.c.counter_id.in_(scope)
    item_filter = [T_CASE.c.item_code == item] if item else []
    held = T_HOLD.join(T_CASE, T_CASE.c.id == T_HOLD.c.case_id)

    # One scan of the open cases in scope (index-only: ix_cases_open_cover) feeds every open-case
    # figure. Dates come back only for rows at risk or stale, so most rows are a few short strings.
    running_due = deadlines.running_due()
    risky_due = sa.case((running_due <= warn_cutoff, running_due), else_=None)
    stale_at = sa.case((T_CASE.c.updated_at < stuck_before, T_CASE.c.updated_at), else_=None)
    with _gc_paused():
        rows = session.execute(
            sa.select(T_HOLD.c.counter_id, T_CASE.c.id, T_CASE.c.item_code, T_CASE.c.state,
                      _assignee_expr(dialect), T_CASE.c.companion_id, risky_due, stale_at)
            .select_from(held).where(in_scope, T_CASE.c.finished_at.is_(None), *item_filter)
        ).all()
        # A row per (holding counter, case): a case in parallel review is held by several counters.
        # Counters and workloads count it at each holder; everything else counts the case once.
        per_holder: Tally[tuple[str, Any]] = Tally()
        per_case: Tally[tuple[str, str]] = Tally()
        regions: set[tuple[str, int]] = set()
        seen: set[int] = set()
        parallel: set[int] = set()
        risky, stale = [], []
        for cid, case_id, code, state, clerk, companion_id, due, stale_since in rows:
            # Who has the work: the claimant of the step, or the companion for the intake steps.
            per_holder[(cid, companion_id if (code, state) in companion else clerk)] += 1
            regions.add((counters[cid]["region"], case_id))
            if case_id in seen:
                parallel.add(case_id)
                continue
            seen.add(case_id)
            per_case[(code, state)] += 1
            # A stopped clock puts the deadline out of danger: it moves out when the clock resumes.
            if due is not None and (code, state) not in paused:
                risky.append((due, case_id, cid, code, state))
            if stale_since is not None:
                stale.append((stale_since, case_id, cid, code, state))
    by: dict[str, dict[str, int]] = {k: defaultdict(int) for k in ("state", "region", "counter", "item")}
    load: dict[tuple[str, int | None], int] = defaultdict(int)
    for (cid, clerk), n in per_holder.items():
        by["counter"][cid] += n
        load[(cid, int(clerk) if clerk is not None else None)] += n
    for (code, state), n in per_case.items():
        by["state"][labels.get((code, state), state)] += n
        by["item"][code] += n
    for region_code, _ in regions:
        by["region"][region_code] += 1
    overdue = sum(1 for r in risky if r[0] < today)
    deadline = {"正常": len(seen) - len(risky), "预警": len(risky) - overdue, "逾期": overdue}
    at_risk_rows = heapq.nsmallest(LIST_LIMIT, risky)
    stuck_rows = heapq.nsmallest(LIST_LIMIT, stale)
    wanted = {r[1] for r in at_risk_rows} | {r[1] for r in stuck_rows}
    details = {r.id: r for r in session.execute(
        sa.select(T_CASE.c.id, T_CASE.c.number, running_due.label("due"), T_CASE.c.promised_due,
                  T_CASE.c.updated_at)
        .where(T_CASE.c.id.in_(wanted)))} if wanted else {}

    def listed(case_id: int, cid: str, code: str, state: str) -> dict[str, Any]:
        d = details[case_id]
        return {"number": d.number, "item": code, "state": labels.get((code, state), state),
                "counter": cid, "region": counters[cid]["region"],
                "promised_due": d.promised_due.isoformat() if d.promised_due else None,
                "deadline": deadline_status(d.due, today, warn_cutoff),
                "last_event": wire.instant(d.updated_at), "prefect_url": prefect_runs_url(d.number)}

    at_risk = [listed(*r[1:]) for r in at_risk_rows]
    stuck = [listed(*r[1:]) for r in stuck_rows]
    stuck_count = len(stale)

    return {
        "today": today.isoformat(), "timezone": settings.timezone, "warn_working_days": settings.warn_working_days,
        "stuck_working_days": settings.stuck_working_days, "period_days": days,
        "filters": {"region": region, "counter": counter, "item": item},
        "open_total": len(seen),
        # Cases held by several counters at once (并联审批): counted once above, at each holder in
        # open_by.counter and the workloads.
        "parallel_open": len(parallel),
        # Years within 60 days (or begun) with no official holiday schedule: their due dates are
        # provisional until `tongban calendar import` publishes one.
        "calendar_missing_years": cal.missing_years(today),
        "open_by": {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in by.items()},
        "counters": counters,
        "deadline": deadline, "at_risk": at_risk,
        "stuck": {"count": stuck_count, "cases": stuck},
        "throughput": _throughput(session, scope, item, since, today, dialect),
        "handoffs": _handoffs(session, counters, scope, since, dialect),
        "workloads": _workloads(session, scope, load),
    }


def _local_day(col: Any, dialect: str) -> Any:
    """The calendar day of a stored instant in the product's zone, computed in SQL. PostgreSQL
    converts exactly; SQLite shifts by the zone's offset now (exact for Asia/Shanghai, which has
    no daylight saving)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone(get_settings().timezone, col), sa.Date)
    offset = clock.now().astimezone(clock.zone()).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    return sa.func.date(col, f"{minutes:+d} minutes")


def _throughput(session: Session, scope: list[str], item: str | None, since: datetime,
                today: date, dialect: str) -> list[dict[str, Any]]:
    """Cases received and finished per day over the period; a case counts for its intake counter."""
    out: dict[str, dict[str, int]] = {}
    day = clock.local_date(since)
    while day <= today:
        out[day.isoformat()] = {"received": 0, "finished": 0}
        day += timedelta(days=1)
    for key, col in (("received", T_CASE.c.created_at), ("finished", T_CASE.c.finished_at)):
        where = [col >= since, T_CASE.c.intake_counter_id.in_(scope)]
        if item:
            where.append(T_CASE.c.item_code == item)
        d = _local_day(col, dialect)
        for value, n in session.execute(sa.select(d, sa.func.count()).where(*where).group_by(d)):
            if _day(value) in out:
                out[_day(value)][key] = n
    return [{"day": k, **v} for k, v in out.items()]


def _handoffs(session: Session, counters: dict[str, dict[str, str]], scope: list[str],
              since: datetime, dialect: str) -> list[dict[str, Any]]:
    """Hand-off time per (from region, to region): the handoff job's finish, else the first event
    at the destination counter after the transition that started it. Pending ones are counted."""
    arrived = (sa.select(sa.func.min(T_HIST.c.at))
               .where(T_HIST.c.case_id == T_OUT.c.case_id, T_HIST.c.counter_id == T_OUT.c.counter_id,
                      T_HIST.c.at > T_OUT.c.created_at)
               .correlate(T_OUT).scalar_subquery())
    end = sa.func.coalesce(T_OUT.c.finished_at, arrived)
    src = T_OUT.c.payload["from_counter"].as_string()
    secs = _seconds(end, T_OUT.c.created_at, dialect)
    rows = session.execute(
        sa.select(src, T_OUT.c.counter_id, sa.func.count(), sa.func.count(end), sa.func.avg(secs),
                  sa.func.max(secs))
        .where(T_OUT.c.job == "handoff", T_OUT.c.created_at >= since,
               sa.or_(T_OUT.c.counter_id.in_(scope), src.in_(scope)))
        .group_by(src, T_OUT.c.counter_id)
    ).all()
    regions = dict(session.execute(sa.select(Counter.id, Counter.region_code)).all())
    pairs: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: {"n": 0, "done": 0, "sum": 0.0, "max": 0.0})
    for frm, to, n, done, avg, mx in rows:
        p = pairs[(regions.get(frm, "?"), regions.get(to, "?"))]
        p["n"] += n
        p["done"] += done
        p["sum"] += float(avg or 0) * done
        p["max"] = max(p["max"], float(mx or 0))
    return [{"from": a, "to": b, "count": int(p["n"]), "pending": int(p["n"] - p["done"]),
             "avg_hours": round(p["sum"] / p["done"] / 3600, 2) if p["done"] else None,
             "max_hours": round(p["max"] / 3600, 2) if p["done"] else None}
            for (a, b), p in sorted(pairs.items())]


def _workloads(session: Session, scope: list[str], load: dict[tuple[str, int | None], int]) -> list[dict[str, Any]]:
    """Open cases per clerk: the one assigned at the holding counter (一事一人), or unassigned."""
    names = dict(session.execute(sa.select(Clerk.id, Clerk.name).where(Clerk.counter_id.in_(scope))).all())
    out = [{"counter": cid, "clerk_id": clerk,
            "clerk": names.get(clerk, f"#{clerk}") if clerk is not None else "(未分派)", "open": n}
           for (cid, clerk), n in load.items()]
    return sorted(out, key=lambda r: (-r["open"], r["counter"]))
