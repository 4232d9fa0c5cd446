"""Notifications that leave the building: queued in the transaction of the fact they tell, delivered
afterwards by every drain cycle (``flows.notify.pump``), each attempt logged.

The ``notifications`` table is the messages' outbox. Whoever writes a fact writes its message in
the same transaction (a booking, a transition's ``notify_applicant`` job keyed by the job's id, a
差评), so a message exists exactly when its fact committed, and a replayed job finds its key taken.
``deliver_due`` then claims due messages with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
a conditional UPDATE on both), so two drainers never hold the same message; sends each through its
channel's sender (``engine.notify_send``); and records the attempt and its outcome together, only
while the lease is still its own.

Retried, never lost: a failed attempt waits ``notify_backoff_seconds`` doubling up to
``notify_backoff_max_seconds``; after ``notify_max_attempts`` (or a refusal that no retry can
cure) the message is ``failed``, still listed with its log, and ``requeue`` sends it again. A
channel whose server is down is not tried again within the same round. Never sent twice: a
message is sent only by its lease holder and marked sent in the attempt's transaction; the one gap
left is a process killed between the server's acceptance and that commit, after which the lease
runs out and the message goes again under the same ``Idempotency-Key`` / ``Message-ID``, which
the gateway and mail readers dedupe by.

Routing: applicants by SMS to their mobile number (the booking's phone, the case's applicant);
supervisors by mail to the addresses configured for the case's regions
(``notify_supervisor_emails``). A message with nowhere to go is kept as ``unrouted``.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.clock import now
from core.settings import get_settings
from engine import directory
from engine.errors import Conflict, NotFound
from engine.notify_send import Outgoing, Sender, SendError, configured
from storage.flow_tables import T_NOTE, T_NOTE_LOG
from storage.tables import T_CASE, Counter

MOBILE = re.compile(r"^(?:\+?86-?)?(1[3-9]\d{9})$")
STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败", "unrouted": "无可用地址",
                 "expired": "已过期未发送"}
CHANNEL_LABELS = {"sms": "短信", "email": "邮件"}


def mobile(phone: str | None) -> str | None:
    """The 11-digit mobile number an SMS can go to, or None (a landline, nothing)."""
    found = MOBILE.match(re.sub(r"[\s\-]", "", phone or ""))
    return found.group(1) if found else None


def region_chain(code: str) -> list[str]:
    """A region, then its city, then its province (``370211`` → ``370200`` → ``370000``)."""
    out = [code]
    if len(code) == 6 and code[4:] != "00":
        out.append(code[:4] + "00")
    if len(code) == 6 and code[2:] != "0000":
        out.append(code[:2] + "0000")
    return out


def supervisor_emails(regions: list[str]) -> list[str]:
    """The configured addresses for these regions: each region's own, else its nearest region
    above that has some, else ``*``."""
    table = get_settings().notify_supervisor_emails
    found: list[str] = []
    for region in regions:
        for code in region_chain(region):
            if table.get(code):
                found += [a for a in table[code] if a not in found]
                break
    return found or list(table.get("*", []))


def queue(session: Session, key: str, *, audience: str, kind: str, message: str, case_id: int | None = None,
          subject: str = "", channel: str | None = None, address: str | None = None,
          unrouted: str | None = None) -> bool:
    """Queue a message in the caller's transaction; False when its key is already taken (a replay).
    Without channel and address they are resolved from the case when the message is first claimed;
    ``unrouted`` keeps it, with that reason, as one that has nowhere to go."""
    try:
        with session.begin_nested():
            session.execute(sa.insert(T_NOTE).values(
                dedupe_key=key[:128], case_id=case_id, audience=audience, kind=kind, message=message,
                subject=subject[:200], channel=channel, address=address,
                status="unrouted" if unrouted else "pending", last_error=unrouted, attempts=0, created_at=now()))
    except IntegrityError:
        return False
    return True


def to_applicant_phone(session: Session, key: str, phone: str | None, kind: str, message: str,
                       case_id: int | None = None) -> bool:
    """An SMS to the phone the applicant gave; a landline leaves it unrouted, kept all the same."""
    number = mobile(phone)
    return queue(session, key, audience="applicant", kind=kind, message=message, case_id=case_id,
                 channel="sms" if number else None, address=number,
                 unrouted=None if number else "申请人未留手机号, 无法发送短信")


def to_supervisors(session: Session, key: str, counter_id: str, kind: str, subject: str, message: str,
                   case_id: int | None = None) -> bool:
    """A mail to the supervisors of the counter's region."""
    counter = directory.counter(session, counter_id)
    addresses = supervisor_emails([counter.region_code] if counter else [])
    return queue(session, key, audience="supervisor", kind=kind, message=message, case_id=case_id,
                 subject=subject, channel="email" if addresses else None,
                 address=",".join(addresses) if addresses else None)


def _route(conn: sa.Connection, row: Any) -> tuple[str, str] | None:
    """Where a message queued without an address goes, judged from its case."""
    if row.case_id is None:
        return None
    case = conn.execute(sa.select(T_CASE.c.applicant, T_CASE.c.intake_counter_id, T_CASE.c.competent_counter_id)
                        .where(T_CASE.c.id == row.case_id)).first()
    if case is None:
        return None
    if row.audience == "applicant":
        number = mobile((case.applicant or {}).get("phone"))
        return ("sms", number) if number else None
    regions = []
    for counter_id in (case.intake_counter_id, case.competent_counter_id):
        region = conn.execute(sa.select(Counter.region_code).where(Counter.id == counter_id)).scalar_one_or_none()
        if region and region not in regions:
            regions.append(region)
    addresses = supervisor_emails(regions)
    return ("email", ",".join(addresses)) if addresses else None


def backoff(attempts: int) -> timedelta:
    s = get_settings()
    return timedelta(seconds=min(s.notify_backoff_max_seconds, s.notify_backoff_seconds * 2 ** max(0, attempts - 1)))


def _claim(engine: sa.Engine, owner: str, limit: int) -> list[int]:
    at = now()
    free = sa.or_(T_NOTE.c.lease_until.is_(None), T_NOTE.c.lease_until < at)
    due = (T_NOTE.c.status == "pending", sa.or_(T_NOTE.c.next_attempt_at.is_(None), T_NOTE.c.next_attempt_at <= at),
           free)
    q = sa.select(T_NOTE.c.id).where(*due).order_by(T_NOTE.c.id).limit(limit)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        ids = list(conn.execute(q).scalars())
        until = at + timedelta(seconds=get_settings().notify_lease_seconds)
        return [i for i in ids if conn.execute(sa.update(T_NOTE).where(T_NOTE.c.id == i, *due).values(
            lease_owner=owner, lease_until=until)).rowcount]


def _mine(nid: int, owner: str) -> Any:
    return sa.and_(T_NOTE.c.id == nid, T_NOTE.c.lease_owner == owner, T_NOTE.c.status == "pending")


def _release(engine: sa.Engine, ids: list[int], owner: str, values: dict[str, Any] | None = None) -> None:
    with engine.begin() as conn:
        for nid in ids:
            conn.execute(sa.update(T_NOTE).where(_mine(nid, owner)).values(
                lease_owner=None, lease_until=None, **(values or {})))


def _prepare(engine: sa.Engine, nid: int, owner: str, senders: dict[str, Sender]) -> Outgoing | None:
    """The message to send, its route resolved; None when it is settled without sending."""
    s = get_settings()
    with engine.begin() as conn:
        row = conn.execute(sa.select(T_NOTE).where(_mine(nid, owner))).first()
        if row is None:
            return None
        channel, address = row.channel, row.address
        end: dict[str, Any] = {}
        if not (channel and address):
            routed = _route(conn, row)
            if routed is None:
                end = {"status": "unrouted",
                       "last_error": "没有可发送的地址 (申请人未留手机号, 或该区域未配置督查邮箱)"}
            else:
                channel, address = routed
                conn.execute(sa.update(T_NOTE).where(T_NOTE.c.id == nid).values(channel=channel, address=address))
        if not end and channel not in senders:
            end = {"status": "unrouted", "last_error": f"未配置{CHANNEL_LABELS.get(channel, channel)}发送服务"}
        if not end and row.attempts == 0 and row.created_at < now() - timedelta(hours=s.notify_max_age_hours):
            end = {"status": "expired", "last_error": f"排队超过 {s.notify_max_age_hours} 小时, 不再发送"}
        if end:
            conn.execute(sa.update(T_NOTE).where(T_NOTE.c.id == nid).values(lease_owner=None, lease_until=None,
                                                                             **end))
            return None
        return Outgoing(channel, address, row.subject, row.message, row.dedupe_key)


def _record(engine: sa.Engine, nid: int, owner: str, message: Outgoing, at: datetime, ms: int,
            provider_id: str | None, error: SendError | None) -> str:
    """The attempt and its outcome, in one transaction, while the lease is still ours."""
    s = get_settings()
    with engine.begin() as conn:
        attempts = conn.execute(sa.select(T_NOTE.c.attempts).where(_mine(nid, owner))).scalar_one_or_none()
        held = attempts is not None
        if not held:  # the lease ran out while sending (another drainer has it now): logged all the same
            attempts = conn.execute(sa.select(T_NOTE.c.attempts).where(T_NOTE.c.id == nid)).scalar_one()
        attempts += 1
        conn.execute(sa.insert(T_NOTE_LOG).values(
            notification_id=nid, attempt=attempts, at=at, channel=message.channel, ok=error is None,
            error=str(error) if error else None, provider_id=provider_id, duration_ms=ms, worker=owner))
        if not held:
            return "lost_lease"
        values: dict[str, Any] = {"attempts": attempts, "lease_owner": None, "lease_until": None}
        if error is None:
            values |= {"status": "sent", "sent_at": now(), "provider_id": provider_id, "last_error": None,
                       "next_attempt_at": None}
        elif error.permanent or attempts >= s.notify_max_attempts:
            values |= {"status": "failed", "last_error": str(error), "next_attempt_at": None}
        else:
            values |= {"last_error": str(error), "next_attempt_at": now() + backoff(attempts)}
        conn.execute(sa.update(T_NOTE).where(T_NOTE.c.id == nid).values(**values))
        return str(values.get("status", "retry"))


def deliver_due(engine: sa.Engine, owner: str, senders: dict[str, Sender] | None = None) -> dict[str, int]:
    """One round: claim what is due, send it, record each attempt. The counts of what happened."""
    if senders is not None:
        return _round(engine, owner, senders)
    made = configured()
    try:
        return _round(engine, owner, made)
    finally:
        for sender in made.values():
            sender.close()


def _round(engine: sa.Engine, owner: str, senders: dict[str, Sender]) -> dict[str, int]:
    counts = {"sent": 0, "retry": 0, "failed": 0, "settled": 0}
    if not senders:  # nothing configured: messages wait (and expire) rather than be marked unsendable
        return counts
    s = get_settings()
    claimed = _claim(engine, owner, s.notify_batch)
    deadline = time.monotonic() + s.notify_round_seconds
    down: dict[str, datetime] = {}  # channels whose server failed this round, and until when they rest
    for i, nid in enumerate(claimed):
        if time.monotonic() > deadline:
            _release(engine, claimed[i:], owner)
            break
        message = _prepare(engine, nid, owner, senders)
        if message is None:
            counts["settled"] += 1
            continue
        if message.channel in down:
            _release(engine, [nid], owner, {"next_attempt_at": down[message.channel]})
            continue
        at, started = now(), time.monotonic()
        provider_id, error = None, None
        try:
            provider_id = senders[message.channel].send(message)
        except SendError as exc:
            error = exc
        except Exception as exc:  # a sender's bug must not stop the round, nor lose the message
            error = SendError(f"{type(exc).__name__}: {exc}"[:500])
        outcome = _record(engine, nid, owner, message, at, int((time.monotonic() - started) * 1000),
                          provider_id, error)
        if outcome == "retry" and error is not None:
            down[message.channel] = now() + backoff(1)
        counts[outcome if outcome in counts else "settled"] += 1
    return counts


def requeue(session: Session, notification_id: int) -> dict[str, Any]:
    """Send a failed or unrouted message again (after the address or the server was fixed)."""
    row = session.execute(sa.select(T_NOTE).where(T_NOTE.c.id == notification_id)).first()
    if row is None:
        raise NotFound(f"没有通知 {notification_id}")
    if row.status not in ("failed", "unrouted"):
        raise Conflict(f"该通知{STATUS_LABELS.get(row.status, row.status)}, 不能重发", field="id")
    session.execute(sa.update(T_NOTE).where(T_NOTE.c.id == notification_id).values(
        status="pending", attempts=0, next_attempt_at=None, last_error=None, created_at=now(),
        channel=row.channel if row.address else None))
    return view(session, notification_id)


def view(session: Session, notification_id: int) -> dict[str, Any]:
    row = session.execute(sa.select(T_NOTE).where(T_NOTE.c.id == notification_id)).mappings().first()
    if row is None:
        raise NotFound(f"没有通知 {notification_id}")
    log = session.execute(sa.select(T_NOTE_LOG).where(T_NOTE_LOG.c.notification_id == notification_id)
                          .order_by(T_NOTE_LOG.c.id)).mappings().all()
    return {**{k: row[k] for k in ("id", "dedupe_key", "case_id", "audience", "kind", "subject", "message",
                                   "channel", "address", "status", "attempts", "created_at", "sent_at",
                                   "next_attempt_at", "last_error", "provider_id")},
            "status_label": STATUS_LABELS.get(row["status"], row["status"]),
            "log": [dict(r) for r in log]}
