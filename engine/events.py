"""The event feed: every committed history event, for integrators, in an order that never skips one.

Why the history id cannot be the cursor: on PostgreSQL an event takes its id when it is inserted,
and transactions commit in another order than they insert. A reader that has seen id 12 can
later find id 11, committed by a transaction that was still open; ``id > 12`` skips it for good.
(SQLite has one writer at a time, so there ids do follow commits; one rule serves both.)

So every event gets a *position* after it committed. ``catch_up`` — one run at a time, under the
row lock on ``feed_state`` — numbers the committed events that have none yet, in id order (a
case's events are written under its row lock, so within a case id order is seq order). A run's
positions commit together and every later run numbers above them: once a reader has seen
position N, no new event appears at or below N. The cursor is a position.

Finding the events without a position must not scan all history. ``low_water`` is an id up to
which every event has its position or never committed; only ids above it are looked at. It moves
up once nothing below can still commit: on SQLite at once (the run holds the writer lock); on
PostgreSQL once every transaction that could hold an id up to a seen one has ended: the numbering
run reads the newest id before it takes a transaction id of its own, and later runs wait until the
snapshot's xmin has passed that transaction id. Every path that appends history has written
the case row earlier in its transaction, so it holds a transaction id before it takes an event
id; that is what the check counts on. A transaction left open only widens the range looked at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

import sqlalchemy as sa
from sqlmodel import Session

from engine.actors import Actor
from engine.dashboard import supervised_regions
from engine.errors import InvalidInput
from storage.db import bound_engine
from storage.tables import T_CASE, T_HIST, Counter
from storage.webhook_tables import T_FEED, T_FEED_CASES, T_FEED_STATE

BATCH = 5000  # events numbered per catch-up run
SCAN_WINDOW = 10_000  # positions one read looks through at most, however few of them the caller sees
CURSOR = re.compile(r"^[0-9]{1,18}$")
STATE_ID = 1


@dataclass(frozen=True)
class Filters:
    region: str | None = None  # cases with a counter of this region
    counter: str | None = None  # cases this counter takes part in
    item: str | None = None  # item code
    kind: str | None = None  # history kind: intake, transition, material, …


class FeedRow(TypedDict):
    """What ``page`` reads for one event: its position, case and history columns."""

    position: int
    case_id: int
    number: str
    item_code: str
    intake_counter_id: str
    seq: int
    at: datetime
    kind: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    counter_id: str | None


class Event(TypedDict):
    """An event as integrators get it (``api.models.Event`` documents it)."""

    id: str
    cursor: str
    case: str
    seq: int
    item: str
    kind: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    counter: str | None
    at: datetime


# --- numbering committed events ---------------------------------------------------------------

_UNNUMBERED = ~sa.exists().where(T_FEED.c.history_id == T_HIST.c.id)


def catch_up(engine: sa.Engine, batch: int = BATCH) -> int:
    """Give positions to committed events that have none; returns how many. Cheap when there are
    none (one read, no write lock); a run already going elsewhere is not waited for."""
    with engine.execution_options(readonly=True).connect() as conn:
        low = conn.execute(sa.select(T_FEED_STATE.c.low_water).where(T_FEED_STATE.c.id == STATE_ID)).scalar()
        waiting = low is None or conn.execute(
            sa.select(T_HIST.c.id).where(T_HIST.c.id > low, _UNNUMBERED).limit(1)).first() is not None
    if not waiting:
        return 0
    with engine.execution_options(readonly=False).begin() as conn:
        return _number(conn, batch)


def _number(conn: sa.Connection, batch: int) -> int:
    pg = conn.dialect.name == "postgresql"
    # Before this transaction takes an id of its own (the row lock below): every event id up to
    # ``newest`` was taken by a transaction whose id is below ours.
    newest = conn.execute(sa.select(sa.func.max(T_HIST.c.id))).scalar() or 0
    locked = sa.select(T_FEED_STATE).where(T_FEED_STATE.c.id == STATE_ID)
    state = conn.execute(locked.with_for_update(skip_locked=True) if pg else locked).mappings().first()
    if state is None:
        if conn.execute(locked).first() is not None:
            return 0  # another run holds the row: it numbers these
        conn.execute(sa.insert(T_FEED_STATE).values(id=STATE_ID, last_position=0, low_water=0))
        state = conn.execute(locked).mappings().one()
    # Read before the events are: whatever had ended by now is visible to the select below.
    xmin = _snapshot(conn, "xmin") if pg else 0
    rows = conn.execute(
        sa.select(T_HIST.c.id, T_HIST.c.case_id).where(T_HIST.c.id > state["low_water"], _UNNUMBERED)
        .order_by(T_HIST.c.id).limit(batch)).all()
    position = state["last_position"]
    if rows:
        conn.execute(sa.insert(T_FEED), [{"position": position + i, "history_id": r.id, "case_id": r.case_id}
                                         for i, r in enumerate(rows, 1)])
        position += len(rows)
        _note_counters(conn, {r.case_id for r in rows})
    full = len(rows) == batch  # more may wait above the last id numbered
    values: dict[str, Any] = {"last_position": position}
    if pg:
        low, settled = state["low_water"], state["pending_xmax"] is not None and xmin >= state["pending_xmax"]
        if settled:  # every transaction that could hold an id up to pending_high has ended
            low = max(low, min(state["pending_high"], rows[-1].id) if full else state["pending_high"])
        if settled or state["pending_xmax"] is None:
            # Not the snapshot's xmax: that is one past the newest *completed* transaction, and a
            # transaction that began after it may hold an id below ``newest`` (it took its
            # transaction id before ours, its event id before ``newest`` was read).
            values |= {"pending_high": newest, "pending_xmax": _own_xid(conn)}
        values["low_water"] = low
    else:  # the writer lock is ours: nothing else is in flight
        values["low_water"] = rows[-1].id if full else max(state["low_water"], newest)
    conn.execute(sa.update(T_FEED_STATE).where(T_FEED_STATE.c.id == STATE_ID).values(**values))
    return len(rows)


def _snapshot(conn: sa.Connection, which: str) -> int:
    fn = {"xmin": "pg_snapshot_xmin", "xmax": "pg_snapshot_xmax"}[which]
    return int(conn.exec_driver_sql(f"SELECT {fn}(pg_current_snapshot())::text::bigint").scalar_one())


def _own_xid(conn: sa.Connection) -> int:
    """This run's transaction id (the row lock gave it one): above every id handed out before."""
    return int(conn.exec_driver_sql("SELECT pg_current_xact_id()::text::bigint").scalar_one())


def _note_counters(conn: sa.Connection, case_ids: set[int]) -> None:
    """The counters of cases seen for the first time, with their regions (parties are fixed at intake)."""
    ids = sorted(case_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        known = set(conn.execute(sa.select(T_FEED_CASES.c.case_id).where(T_FEED_CASES.c.case_id.in_(chunk))
                                 .distinct()).scalars())
        new = [c for c in chunk if c not in known]
        if not new:
            continue
        parties = {cid: set((p or {}).values()) for cid, p in conn.execute(
            sa.select(T_CASE.c.id, T_CASE.c.parties).where(T_CASE.c.id.in_(new)))}
        counters = sorted(set().union(*parties.values()))
        regions = dict(conn.execute(sa.select(Counter.id, Counter.region_code).where(Counter.id.in_(counters))).all())
        rows = [{"case_id": cid, "counter_id": c, "region_code": regions.get(c, "")}
                for cid, cs in parties.items() for c in sorted(cs)]
        if rows:
            conn.execute(sa.insert(T_FEED_CASES), rows)


# --- reading -----------------------------------------------------------------------------------

def parse_cursor(raw: str | None, field: str = "after") -> int:
    if raw is None or raw == "":
        return 0
    if not CURSOR.match(raw):
        raise InvalidInput(field, "游标须为本服务给出的 next_cursor")
    return int(raw)


def top_position(session: Session) -> int:
    return int(session.execute(sa.select(T_FEED_STATE.c.last_position)
                               .where(T_FEED_STATE.c.id == STATE_ID)).scalar() or 0)


def visible_cases(session: Session, actor: Actor) -> Any | None:
    """The condition on ``feed_events.case_id`` for what ``actor`` may read (``engine.access``:
    clerks of a counter the case involves, supervisors of a region one of its counters lies
    in); None for the system."""
    if actor.is_system:
        return None
    parts = []
    if actor.counter_id is not None:
        parts.append(T_FEED.c.case_id.in_(
            sa.select(T_FEED_CASES.c.case_id).where(T_FEED_CASES.c.counter_id == actor.counter_id)))
    regions = supervised_regions(session, actor) if "supervisor" in actor.roles else set()
    if regions:
        parts.append(T_FEED.c.case_id.in_(
            sa.select(T_FEED_CASES.c.case_id).where(T_FEED_CASES.c.region_code.in_(sorted(regions)))))
    return sa.or_(*parts) if parts else sa.false()


def page(session: Session, actor: Actor, after: int, filters: Filters,
         limit: int) -> tuple[list[FeedRow], int]:
    """Up to ``limit`` events after position ``after`` that ``actor`` may see and ``filters``
    match, oldest first, and the position to go on from. The position may pass events the caller
    does not see (never one it does), so a narrow filter still moves on through the feed."""
    top = top_position(session)
    if after > top:
        raise InvalidInput("after", "游标超出事件流的末尾, 不是本服务给出的游标")
    upto = min(top, after + SCAN_WINDOW)
    q = (sa.select(T_FEED.c.position, T_FEED.c.case_id, T_CASE.c.number, T_CASE.c.item_code,
                   T_CASE.c.intake_counter_id, T_HIST.c.seq, T_HIST.c.at, T_HIST.c.kind, T_HIST.c.trigger,
                   T_HIST.c.from_state, T_HIST.c.to_state, T_HIST.c.counter_id)
         .join(T_HIST, T_HIST.c.id == T_FEED.c.history_id)
         .join(T_CASE, T_CASE.c.id == T_FEED.c.case_id)
         .where(T_FEED.c.position > after, T_FEED.c.position <= upto))
    scope = visible_cases(session, actor)
    if scope is not None:
        q = q.where(scope)
    if filters.counter:
        q = q.where(T_FEED.c.case_id.in_(
            sa.select(T_FEED_CASES.c.case_id).where(T_FEED_CASES.c.counter_id == filters.counter)))
    if filters.region:
        q = q.where(T_FEED.c.case_id.in_(
            sa.select(T_FEED_CASES.c.case_id).where(T_FEED_CASES.c.region_code == filters.region)))
    if filters.item:
        q = q.where(T_CASE.c.item_code == filters.item)
    if filters.kind:
        q = q.where(T_HIST.c.kind == filters.kind)
    rows: list[FeedRow] = [dict(r) for r in session.execute(  # type: ignore[misc]
        q.order_by(T_FEED.c.position).limit(limit)).mappings()]
    return rows, (rows[-1]["position"] if len(rows) == limit else upto)


def public(row: FeedRow) -> Event:
    """An event as integrators get it, in the feed and in webhook deliveries alike."""
    return {
        "id": f"{row['number']}-{row['seq']}", "cursor": str(row["position"]), "case": row["number"],
        "seq": row["seq"], "item": row["item_code"], "kind": row["kind"], "trigger": row["trigger"],
        "from_state": row["from_state"], "to_state": row["to_state"], "counter": row["counter_id"],
        "at": row["at"].astimezone(UTC),
    }


def feed(session: Session, actor: Actor, after: str | None, filters: Filters, limit: int) -> dict[str, Any]:
    """One page of the feed for ``actor``, numbering what committed since the last read first.

    The numbering is a short transaction of its own, before this unit's first read: on SQLite a
    GET's unit is a read snapshot that takes no writer lock, and it must see the new positions."""
    position = parse_cursor(after)
    catch_up(bound_engine(session))
    rows, upto = page(session, actor, position, filters, limit)
    return {"items": [public(r) for r in rows], "next_cursor": str(upto)}
