"""Webhooks: subscriptions to the event feed, delivered through the outbox, at least once and in order.

A subscription is a cursor into the feed (``engine.events``), with its owner's scopes and the
feed's filters. ``pump`` (every drain cycle) turns a subscription that has something to send and
no delivery under way into one outbox job (``deliver_webhook``, ``flows.webhooks``). The job POSTs
the events after the cursor one at a time, in feed order, and moves the cursor only after a 2xx,
in a transaction of its own per event. The receiver down, answering 5xx or timing out: the attempt
is logged, the subscription waits (exponential backoff), and the next job starts at the cursor
again. The product killed mid-delivery: the job's lease runs out, it is claimed again and starts
at the cursor. The event in flight may then arrive twice, never not at all: receivers dedupe by
its id (``Idempotency-Key``, ``X-Tongban-Event-Id``). One job per subscription at a time keeps the
order.

Every request is signed the way carriers sign their callbacks to us (``engine.delivery.sign``),
the other way round: ``X-Tongban-Signature: sha256=HMAC-SHA256(secret, timestamp + "." + body)``
with the unix time in ``X-Tongban-Timestamp``. The secret is kept sealed (AES-GCM under the
installation's ``webhook-key``, outside the database) and shown once, when it was generated.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session

from core import wire
from core.clock import now
from core.install_secrets import install_key
from core.settings import get_settings
from engine import events
from engine.actors import Actor
from engine.advance import new_job, regions_of
from engine.delivery import sign
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from storage.db import bound_engine, session_scope
from storage.rows import CaseRow
from storage.tables import T_OUT, Clerk, Counter
from storage.webhook_tables import T_HOOK, T_HOOK_LOG, Webhook, WebhookDelivery

JOB = "deliver_webhook"
NONCE_BYTES = 12
PAGE = 50  # events read per query inside a delivery job
MAX_WINDOWS = 100  # stretches of events the owner does not see, passed per job at most


# --- subscriptions -----------------------------------------------------------------------------

def validate_url(url: str) -> str:
    """http or https, a host, no credentials (the signature proves who sends), no fragment."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidInput("url", "地址中不能含空白或控制字符")
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise InvalidInput("url", "不是有效的地址") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url", "只支持 http:// 或 https:// 地址")
    if "@" in parts.netloc:
        raise InvalidInput("url", "地址中不能含用户名或密码: 接收方请用签名验证来源")
    host = (parts.hostname or "").lower()
    if not host or port == 0:
        raise InvalidInput("url", "地址须含主机名")
    if parts.fragment or url.endswith("#"):
        raise InvalidInput("url", "地址中不能含 # 片段")
    allowed = get_settings().webhook_allowed_hosts
    if allowed and not any(host == a or (a.startswith(".") and host.endswith(a)) for a in allowed):
        raise InvalidInput("url", f"主机 {host} 不在允许的范围内 (TONGBAN_WEBHOOK_ALLOWED_HOSTS)")
    return url


def _cipher() -> AESGCM:
    return AESGCM(install_key("webhook-key", get_settings().webhook_key))


def _bound(clerk_id: int, url: str) -> bytes:
    """Associated data: a sealed secret opens only for the owner and address it was made for."""
    return json.dumps(["webhook", clerk_id, url]).encode()


def seal(secret: str, clerk_id: int, url: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    return base64.b64encode(nonce + _cipher().encrypt(nonce, secret.encode(), _bound(clerk_id, url))).decode()


def unseal(hook: Webhook) -> str | None:
    raw = base64.b64decode(hook.secret_sealed)
    try:
        return _cipher().decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _bound(hook.clerk_id, hook.url)).decode()
    except InvalidTag:  # another installation key, or an edited row: nothing can be signed
        return None


def _at(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def view(hook: Any) -> dict[str, Any]:
    """A subscription as its owner reads it (a ``Webhook`` or a row of ``webhooks``); never the secret."""
    return {"id": hook.id, "url": hook.url, "region": hook.region, "counter": hook.counter, "item": hook.item,
            "kind": hook.kind, "created_at": _at(hook.created_at), "delivered_through": str(hook.cursor),
            "failures": hook.failures, "next_attempt_at": _at(hook.next_attempt_at),
            "last_attempt_at": _at(hook.last_attempt_at), "last_status": hook.last_status,
            "last_error": hook.last_error}


def create(session: Session, actor: Actor, url: str, filters: events.Filters, secret: str | None = None,
           start: str = "now") -> tuple[dict[str, Any], str | None]:
    """A new subscription of ``actor`` (events they may see, as their scopes stand at each delivery).
    ``start``: ``now`` delivers what comes from here on, ``beginning`` the whole feed. Returns the
    subscription and the generated secret (None when the caller brought one)."""
    if actor.id is None or (actor.counter_id is None and "supervisor" not in actor.roles):
        raise Forbidden("只有窗口人员或督查人员可以订阅事件 (此账号看不到任何办件)", missing=["counter"])
    url = validate_url(url)
    if start == "now" and not session.in_transaction():
        # Number what has committed so far first: right after the upgrade the feed is still
        # numbering the older history in batches, and "now" must not start behind it. (Only
        # before this unit's first statement: on SQLite its writer lock would be the unit's.)
        while events.catch_up(bound_engine(session)) == events.BATCH:
            pass
    limit = get_settings().webhook_max_per_clerk
    mine = session.execute(sa.select(sa.func.count()).select_from(T_HOOK).where(
        T_HOOK.c.clerk_id == actor.id, T_HOOK.c.deleted_at.is_(None))).scalar_one()
    if mine >= limit:
        raise Conflict(f"每个账号最多 {limit} 个事件订阅, 请先删除不再使用的订阅")
    generated = None
    if secret is None:
        secret = generated = "whsec_" + secrets.token_urlsafe(32)
    hook = Webhook(clerk_id=actor.id, url=url, region=filters.region, counter=filters.counter, item=filters.item,
                   kind=filters.kind, secret_sealed=seal(secret, actor.id, url),
                   cursor=events.top_position(session) if start == "now" else 0, created_at=now())
    session.add(hook)
    session.flush()
    return view(hook), generated


def get(session: Session, actor: Actor, webhook_id: int) -> Webhook:
    """The caller's own subscription; anyone else's is as unknown as one that never existed."""
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.deleted_at is not None or hook.clerk_id != actor.id:
        raise NotFound(f"事件订阅 {webhook_id} 不存在")
    return hook


def listing(session: Session, actor: Actor, cursor: str | None, limit: int) -> dict[str, Any]:
    after = events.parse_cursor(cursor, "cursor")
    rows = session.execute(sa.select(T_HOOK).where(
        T_HOOK.c.clerk_id == actor.id, T_HOOK.c.deleted_at.is_(None), T_HOOK.c.id > after)
        .order_by(T_HOOK.c.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [view(h) for h in rows], "next_cursor": str(rows[-1].id) if more and rows else None}


def delete(session: Session, actor: Actor, webhook_id: int) -> None:
    """Ends deliveries; the delivery log goes with the subscription (it is no longer listed)."""
    hook = get(session, actor, webhook_id)
    hook.deleted_at = now()
    session.add(hook)
    session.flush()


def deliveries(session: Session, actor: Actor, webhook_id: int, cursor: str | None, limit: int) -> dict[str, Any]:
    """The delivery log, newest attempt first."""
    get(session, actor, webhook_id)
    before = events.parse_cursor(cursor, "cursor")
    q = sa.select(T_HOOK_LOG).where(T_HOOK_LOG.c.webhook_id == webhook_id)
    if before:
        q = q.where(T_HOOK_LOG.c.id < before)
    rows = session.execute(q.order_by(T_HOOK_LOG.c.id.desc()).limit(limit + 1)).mappings().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [{"id": r["id"], "event_id": r["event_id"], "cursor": str(r["position"]),
                       "attempt": r["attempt"], "at": _at(r["at"]), "status_code": r["status_code"],
                       "error": r["error"], "duration_ms": r["duration_ms"]} for r in rows],
            "next_cursor": str(rows[-1]["id"]) if more and rows else None}


def owner_actor(session: Session, clerk_id: int) -> Actor | None:
    """The subscription's owner as they are now (roles, counter, regions); None once deactivated."""
    row = session.execute(
        sa.select(Clerk.id, Clerk.name, Clerk.counter_id, Clerk.roles, Clerk.active, Counter.region_code,
                  Counter.name.label("counter_name"))  # type: ignore[attr-defined]
        .outerjoin(Counter, Counter.id == Clerk.counter_id).where(Clerk.id == clerk_id)).first()
    if row is None or not row.active:
        return None
    return Actor(row.id, row.name, row.counter_id, row.region_code, frozenset(row.roles.split(",")), row.counter_name)


def _filters(hook: Any) -> events.Filters:
    return events.Filters(region=hook.region, counter=hook.counter, item=hook.item, kind=hook.kind)


def _same_job(job_id: str | None) -> Any:
    return T_HOOK.c.job_id.is_(None) if job_id is None else T_HOOK.c.job_id == job_id


# --- turning subscriptions into outbox jobs ---------------------------------------------------

def pump(engine: sa.Engine) -> dict[str, int]:
    """Number new events, then queue one delivery job for each subscription that is due (not
    waiting out a backoff), has an event its owner may see after its cursor, and has no job
    pending or running. A subscription with only events its owner does not see just moves on."""
    events.catch_up(engine)
    at = now()
    open_job = sa.exists().where(T_OUT.c.id == T_HOOK.c.job_id, T_OUT.c.status.in_(("pending", "running")))
    with session_scope(engine, readonly=True) as s:
        due = s.execute(
            sa.select(T_HOOK.c.id, T_HOOK.c.clerk_id, T_HOOK.c.cursor, T_HOOK.c.job_id, T_HOOK.c.region,
                      T_HOOK.c.counter, T_HOOK.c.item, T_HOOK.c.kind)
            .join(Clerk, Clerk.id == T_HOOK.c.clerk_id)
            .where(T_HOOK.c.deleted_at.is_(None), Clerk.active, T_HOOK.c.cursor < events.top_position(s),
                   sa.or_(T_HOOK.c.next_attempt_at.is_(None), T_HOOK.c.next_attempt_at <= at),
                   sa.or_(T_HOOK.c.job_id.is_(None), ~open_job))
            .order_by(T_HOOK.c.id)).all()
    counts = {"queued": 0, "moved": 0}
    for hook in due:
        with session_scope(engine, readonly=True) as s:
            owner = owner_actor(s, hook.clerk_id)
            if owner is None:
                continue
            rows, upto = events.page(s, owner, hook.cursor, _filters(hook), 1)
        with session_scope(engine) as s:
            unchanged = (T_HOOK.c.id == hook.id, T_HOOK.c.cursor == hook.cursor, _same_job(hook.job_id))
            if rows:
                counter = rows[0]["intake_counter_id"]
                job = new_job(cast(CaseRow, {"id": rows[0]["case_id"]}), JOB, regions_of(s, {counter})[counter],
                              counter, at, {"webhook": hook.id, "number": rows[0]["number"]})
                # Conditional: of two pumps racing (two server processes), one queues.
                if s.execute(sa.update(T_HOOK).where(*unchanged).values(job_id=job["id"])).rowcount:
                    s.execute(sa.insert(T_OUT).values(**job))
                    counts["queued"] += 1
            elif upto > hook.cursor and s.execute(sa.update(T_HOOK).where(*unchanged).values(cursor=upto)).rowcount:
                counts["moved"] += 1
    return counts


# --- delivering ----------------------------------------------------------------------------------

def backoff(failures: int) -> timedelta:
    s = get_settings()
    return timedelta(seconds=min(s.webhook_backoff_max_seconds, s.webhook_backoff_seconds * 2 ** (failures - 1)))


def request_for(event: events.Event, secret: str, webhook_id: int, at: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery."""
    body = wire.dumps(event)
    ts = str(int(at.timestamp()))
    return body, {"Content-Type": "application/json", "User-Agent": "tongban-webhooks/1",
                  "Idempotency-Key": event["id"], "X-Tongban-Event-Id": event["id"],
                  "X-Tongban-Webhook": str(webhook_id), "X-Tongban-Timestamp": ts,
                  "X-Tongban-Signature": sign(body, ts, secret)}


def _post(http: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    try:
        # Streamed and never read: a receiver's answer body, however large, costs nothing.
        with http.stream("POST", url, content=body, headers=headers) as r:
            status = r.status_code
    except Exception as exc:  # refused, reset, timed out, TLS: a failed attempt like a 5xx
        return None, f"{type(exc).__name__}: {exc}"[:500]
    return status, None if 200 <= status < 300 else f"HTTP {status}"


def _record(engine: sa.Engine, webhook_id: int, job_id: str, cursor: int, failures: int, row: events.FeedRow,
            event_id: str, at: datetime, status: int | None, error: str | None, ms: int) -> bool:
    """Log the attempt and move the cursor past the event on a 2xx, else start the backoff. False
    when the subscription is no longer this job's (deleted, or moved on by someone else)."""
    ok = error is None
    values: dict[str, Any] = {"last_attempt_at": at, "last_status": status, "last_error": error}
    if ok:
        values |= {"cursor": row["position"], "failures": 0, "next_attempt_at": None}
    else:
        values |= {"failures": failures + 1, "next_attempt_at": now() + backoff(failures + 1)}
    with session_scope(engine) as s:
        s.add(WebhookDelivery(webhook_id=webhook_id, event_id=event_id, position=row["position"],
                              attempt=failures + 1, at=at, status_code=status, error=error, duration_ms=ms,
                              job_id=job_id))
        return bool(s.execute(sa.update(T_HOOK).where(
            T_HOOK.c.id == webhook_id, T_HOOK.c.job_id == job_id, T_HOOK.c.cursor == cursor,
            T_HOOK.c.deleted_at.is_(None)).values(**values)).rowcount)


def deliver_round(engine: sa.Engine, webhook_id: int, job_id: str) -> dict[str, Any]:
    """One delivery job: the events after the cursor, in order, until one fails, ``webhook_batch``
    were sent or ``webhook_round_seconds`` passed (the region's other jobs wait behind it; the
    next cycle goes on). Never past half the job's lease: a job outliving its lease would be
    claimed again and deliver beside itself, out of order."""
    s = get_settings()
    with session_scope(engine, readonly=True) as session:
        hook = session.get(Webhook, webhook_id)
        if hook is None or hook.deleted_at is not None or hook.job_id != job_id:
            return {"skipped": "订阅已删除或已由其他任务推送"}
        owner = owner_actor(session, hook.clerk_id)
        secret = unseal(hook)
        url, cursor, failures, filters = hook.url, hook.cursor, hook.failures, _filters(hook)
    if owner is None or secret is None:
        return {"skipped": "订阅者已停用" if owner is None else "签名密钥无法解封 (安装密钥已更换)"}
    out = {"delivered": 0, "failed": 0, "passed": 0}
    deadline = time.monotonic() + min(s.webhook_round_seconds, s.job_lease_seconds / 2)
    timeout = httpx.Timeout(s.webhook_timeout_seconds)
    with httpx.Client(timeout=timeout, follow_redirects=False) as http:
        for _ in range(MAX_WINDOWS):
            limit = min(PAGE, s.webhook_batch - out["delivered"])
            if limit <= 0 or time.monotonic() > deadline:
                break
            with session_scope(engine, readonly=True) as session:
                rows, upto = events.page(session, owner, cursor, filters, limit)
            for row in rows:
                event = events.public(row)
                at = now()
                body, headers = request_for(event, secret, webhook_id, at)
                started = time.monotonic()
                status, error = _post(http, url, body, headers)
                ms = int((time.monotonic() - started) * 1000)
                if not _record(engine, webhook_id, job_id, cursor, failures, row, event["id"], at, status, error, ms):
                    return out | {"stopped": "订阅已删除或已由其他任务推送"}
                if error is not None:
                    out["failed"] += 1
                    return out
                cursor, failures = row["position"], 0
                out["delivered"] += 1
                if time.monotonic() > deadline:
                    return out
            if len(rows) == limit:
                continue
            if upto > cursor:  # past events the owner does not see or the filters leave out
                with session_scope(engine) as session:
                    moved = session.execute(sa.update(T_HOOK).where(
                        T_HOOK.c.id == webhook_id, T_HOOK.c.job_id == job_id, T_HOOK.c.cursor == cursor)
                        .values(cursor=upto)).rowcount
                if not moved:
                    break
                out["passed"] += upto - cursor
                cursor = upto
            if upto >= _top(engine):
                break
    return out


def _top(engine: sa.Engine) -> int:
    with session_scope(engine, readonly=True) as session:
        return events.top_position(session)


def release(session: Session, webhook_id: int, job_id: str) -> None:
    """The job is over (in its effect's transaction): the next one may be queued; old log rows go."""
    session.execute(sa.update(T_HOOK).where(T_HOOK.c.id == webhook_id, T_HOOK.c.job_id == job_id)
                    .values(job_id=None))
    cutoff = now() - timedelta(days=get_settings().webhook_log_days)
    session.execute(sa.delete(T_HOOK_LOG).where(T_HOOK_LOG.c.webhook_id == webhook_id, T_HOOK_LOG.c.at < cutoff))
