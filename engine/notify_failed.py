"""Notifications that did not go out (发送失败, 无可用地址): listed for operators (``tongban notify``)
and for the supervisors of the regions they concern (``/api/v1/notifications/failed``), and put
back in the outbox on request (``engine.notify.requeue``) once the address or the server is fixed.

A message's region is that of the counters it is about: its case's intake and competent counters
(as ``engine.notify`` routes a supervisor's mail), else the counter its key names — a booking's
slot (``appointment:<code>:…``, engine.appointments) or a 差评's rectification task
(``rectification:<id>:…``, engine.rectification). A message about none of them (a test's, an
operator's) is listed by the command only.

Addresses are shown masked (138****0000, d***@example.cn): whoever retries needs to recognise
the address, not to read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine import notify
from engine.actors import Actor
from engine.dashboard import supervised_regions
from engine.errors import Forbidden, NotFound
from storage.appointment_tables import T_APPT, T_SLOT
from storage.flow_tables import T_NOTE, T_NOTE_LOG
from storage.hall_tables import T_RECT
from storage.tables import T_CASE, Counter

RETRYABLE = ("failed", "unrouted")  # what ``requeue`` accepts
KIND_LABELS = {
    "appointment_booked": "预约成功", "appointment_moved": "预约改期", "appointment_cancelled": "预约取消",
    "supplement": "补正材料通知", "result": "办理结果通知",
    "progress": "办件进度通知", "bad_rating": "差评待整改", "rectified": "差评整改回复",
}
LIST_LIMIT = 200
CHUNK = 500  # rows read at a time while judging regions


def mask(address: str | None) -> str | None:
    """A phone number as 138****0000, each mail address as its first letter and its domain."""
    if not address:
        return address
    out = []
    for part in address.split(","):
        part = part.strip()
        if "@" in part:
            local, _, domain = part.partition("@")
            out.append(f"{local[:1]}***@{domain}")
        elif len(part) >= 7:
            out.append(f"{part[:3]}****{part[-4:]}")
        else:
            out.append("*" * len(part))
    return ",".join(out)


def _counters(session: Session, rows: Iterable[Any]) -> dict[int, set[str]]:
    """The counters each message is about (see the module's docstring)."""
    rows = list(rows)
    out: dict[int, set[str]] = {r.id: set() for r in rows}
    case_ids = {r.case_id for r in rows if r.case_id is not None}
    cases = {c.id: {c.intake_counter_id, c.competent_counter_id} for c in session.execute(
        sa.select(T_CASE.c.id, T_CASE.c.intake_counter_id, T_CASE.c.competent_counter_id)
        .where(T_CASE.c.id.in_(case_ids)))} if case_ids else {}
    codes: dict[str, list[int]] = {}
    rects: dict[int, list[int]] = {}
    for r in rows:
        if r.case_id is not None:
            out[r.id] |= cases.get(r.case_id, set())
        kind, _, rest = r.dedupe_key.partition(":")
        ref = rest.split(":", 1)[0]
        if kind == "appointment" and ref:
            codes.setdefault(ref, []).append(r.id)
        elif kind == "rectification" and ref.isdigit():
            rects.setdefault(int(ref), []).append(r.id)
    if codes:
        for code, counter_id in session.execute(
                sa.select(T_APPT.c.code, T_SLOT.c.counter_id).join(T_SLOT, T_SLOT.c.id == T_APPT.c.slot_id)
                .where(T_APPT.c.code.in_(codes))):
            for nid in codes[code]:
                out[nid].add(counter_id)
    if rects:
        for rect_id, counter_id in session.execute(
                sa.select(T_RECT.c.id, T_RECT.c.counter_id).where(T_RECT.c.id.in_(rects))):
            for nid in rects[rect_id]:
                out[nid].add(counter_id)
    return {nid: {c for c in found if c} for nid, found in out.items()}


def _entries(session: Session, rows: list[Any]) -> list[dict[str, Any]]:
    counters = _counters(session, rows)
    wanted = set().union(*counters.values()) if counters else set()
    region_of = {cid: code for cid, code in session.execute(
        sa.select(Counter.id, Counter.region_code).where(Counter.id.in_(wanted)))} if wanted else {}
    ids = [r.id for r in rows]
    last_at = {nid: at for nid, at in session.execute(
        sa.select(T_NOTE_LOG.c.notification_id, sa.func.max(T_NOTE_LOG.c.at))
        .where(T_NOTE_LOG.c.notification_id.in_(ids)).group_by(T_NOTE_LOG.c.notification_id))} if ids else {}
    out = []
    for r in rows:
        mine = sorted(counters[r.id])
        out.append({
            "id": r.id, "case_number": r.number, "kind": r.kind, "kind_label": KIND_LABELS.get(r.kind, r.kind),
            "audience": r.audience, "channel": r.channel,
            "channel_label": notify.CHANNEL_LABELS.get(r.channel or "", "渠道未定"),
            "address": mask(r.address), "status": r.status,
            "status_label": notify.STATUS_LABELS.get(r.status, r.status), "attempts": r.attempts,
            "last_error": r.last_error, "created_at": r.created_at, "last_attempt_at": last_at.get(r.id),
            "counters": mine, "regions": sorted({region_of[c] for c in mine if c in region_of}),
        })
    return out


def _select() -> sa.Select[Any]:
    return (sa.select(T_NOTE.c.id, T_NOTE.c.case_id, T_NOTE.c.dedupe_key, T_NOTE.c.kind, T_NOTE.c.audience,
                      T_NOTE.c.channel, T_NOTE.c.address, T_NOTE.c.status, T_NOTE.c.attempts,
                      T_NOTE.c.last_error, T_NOTE.c.created_at, T_CASE.c.number)
            .outerjoin(T_CASE, T_CASE.c.id == T_NOTE.c.case_id))


def failed(session: Session, regions: set[str] | None = None, limit: int = LIST_LIMIT,
           after: int = 0) -> list[dict[str, Any]]:
    """Messages that failed or had nowhere to go, oldest first, from after the id ``after``: all
    of them, or those about a counter of ``regions``. A message's counters come from its case
    or its key (see the module's docstring), so the regions are judged per chunk read, not in
    the query."""
    out: list[dict[str, Any]] = []
    while True:
        rows = list(session.execute(_select().where(T_NOTE.c.status.in_(RETRYABLE), T_NOTE.c.id > after)
                                    .order_by(T_NOTE.c.id).limit(CHUNK)))
        for e in _entries(session, rows):
            if regions is None or set(e["regions"]) & regions:
                out.append(e)
                if len(out) == limit:
                    return out
        if len(rows) < CHUNK:
            return out
        after = rows[-1].id


def _supervisor_regions(session: Session, actor: Actor) -> set[str]:
    if "supervisor" not in actor.roles:
        raise Forbidden("发送失败的通知仅供督查人员查看和重发", missing=["role:supervisor"])
    return supervised_regions(session, actor)


def failed_for(session: Session, actor: Actor, limit: int = LIST_LIMIT, after: int = 0) -> list[dict[str, Any]]:
    """The failed messages about the counters of the regions the supervisor watches."""
    return failed(session, _supervisor_regions(session, actor), limit, after)


def entry(session: Session, notification_id: int) -> dict[str, Any]:
    rows = list(session.execute(_select().where(T_NOTE.c.id == notification_id)))
    if not rows:
        raise NotFound(f"没有通知 {notification_id}")
    return _entries(session, rows)[0]


def retry(session: Session, notification_id: int, actor: Actor | None = None) -> dict[str, Any]:
    """Put one message back in the outbox; ``actor``, when given, must supervise its region (the
    command line runs as the operator)."""
    if actor is not None:
        regions = _supervisor_regions(session, actor)
        if not set(entry(session, notification_id)["regions"]) & regions:
            raise Forbidden("该通知不在您督查的区域内", missing=["region"])
    notify.requeue(session, notification_id)
    return entry(session, notification_id)


def retry_all(session: Session, regions: set[str] | None = None) -> list[int]:
    """Every listed message (of ``regions``, or all) back in the outbox; their ids."""
    ids = [e["id"] for e in failed(session, regions, limit=2**31)]
    for nid in ids:
        notify.requeue(session, nid)
    return ids
