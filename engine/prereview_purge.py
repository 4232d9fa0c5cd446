"""Retention of 要件预审 drafts (the hourly deadline sweep calls ``purge``).

- A pre-review not taken in as a case within ``prereview_retention_days`` (Beijing days after its
  last activity: submission, re-upload or a clerk's comment) expires: its draft rows go, their
  objects too, and the phone is cleared. The row stays, anonymised (item, 情形, dates, status
  ``expired``): the count of pre-reviews per item that never became a case is the statistic the
  service needs, and the applicant holding the 预审码 is told it expired rather than "no such code".
- A converted pre-review's drafts were copied into the case as its scans at intake: their
  objects go at the next sweep; the rows keep the clerk's verdicts and comments (the record).

Objects are content-addressed, so one may serve another pre-review's draft: only objects no
draft row names any more are deleted, and only once older than ``UPLOAD_WINDOW`` (a concurrent
upload of the same bytes refreshes the object's time before its row lands); a younger one is left
to ``tongban storage sweep``. A converted pre-review waits the same window after its intake, so
its own drafts are never that young. Rows change and commit first, objects go after.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from core.settings import get_settings
from storage.object_factory import get_store
from storage.objects import ObjectLocked, ObjectStore, StoreUnavailable
from storage.prereview_tables import T_DRAFT, T_PRE

# Longer than an upload takes from its object's write to its row's commit.
UPLOAD_WINDOW = timedelta(minutes=10)


def cutoff(at: datetime | None = None) -> datetime:
    """Pre-reviews last touched before this instant have expired: the start of the Beijing day
    ``prereview_retention_days`` before today, so one made on 12-01 lives through 12-31."""
    today = clock.local_date(at or clock.now())
    return clock.start_of(today - timedelta(days=get_settings().prereview_retention_days))


def _mark(session: Session, at: datetime) -> tuple[int, int, set[tuple[str, str]]]:
    expired = [i for (i,) in session.execute(sa.select(T_PRE.c.id).where(
        T_PRE.c.status.in_(("open", "reviewed")), T_PRE.c.updated_at < cutoff(at)))]
    converted = [i for (i,) in session.execute(sa.select(T_PRE.c.id).where(
        T_PRE.c.status == "converted", T_PRE.c.purged_at.is_(None), T_PRE.c.updated_at < at - UPLOAD_WINDOW))]
    ids = expired + converted
    if not ids:
        return 0, 0, set()
    keys = {(b, k) for b, k in session.execute(sa.select(T_DRAFT.c.bucket, T_DRAFT.c.key).where(
        T_DRAFT.c.prereview_id.in_(ids), T_DRAFT.c.key.is_not(None)))}
    if expired:
        session.execute(sa.delete(T_DRAFT).where(T_DRAFT.c.prereview_id.in_(expired)))
        session.execute(sa.update(T_PRE).where(T_PRE.c.id.in_(expired)).values(
            status="expired", phone=None, purged_at=at, updated_at=at))
    if converted:
        session.execute(sa.update(T_DRAFT).where(T_DRAFT.c.prereview_id.in_(converted)).values(key=None))
        session.execute(sa.update(T_PRE).where(T_PRE.c.id.in_(converted)).values(purged_at=at))
    still = {(b, k) for b, k in session.execute(sa.select(T_DRAFT.c.bucket, T_DRAFT.c.key).where(
        T_DRAFT.c.key.in_({k for _, k in keys})))}
    return len(expired), len(converted), keys - still


def _delete(store: ObjectStore, keys: set[tuple[str, str]]) -> tuple[int, int]:
    young_after = datetime.now(UTC) - UPLOAD_WINDOW  # the store's own time, not the product clock
    deleted = left = 0
    for bucket, key in sorted(keys):
        try:
            info = store.stat(bucket, key)
            if info is None:
                continue
            if info.created_at is not None and info.created_at > young_after:
                left += 1  # perhaps a new draft's bytes whose row is on its way: the storage sweep's
                continue
            store.delete(bucket, key)
            deleted += 1
        except (StoreUnavailable, ObjectLocked, OSError):
            left += 1  # the storage sweep takes it later (no row names it)
    return deleted, left


def purge(engine: sa.Engine, *, store: ObjectStore | None = None) -> dict[str, Any]:
    """Expire stale pre-reviews and drop the drafts of converted ones in one unit of work, then
    (committed) delete the objects no row names. Returns the counts (the sweep's answer)."""
    from storage.db import session_scope

    with session_scope(engine) as session:
        expired, converted, keys = _mark(session, clock.now())
    deleted, left = _delete(store or get_store(), keys) if keys else (0, 0)
    return {"prereviews_expired": expired, "prereviews_drafts_dropped": converted,
            "prereview_objects_deleted": deleted, "prereview_objects_left": left}


def statistics(session: Session) -> dict[str, dict[str, int]]:
    """Pre-reviews per item and status (the expired ones counted though their data is gone)."""
    out: dict[str, dict[str, int]] = {}
    for item, status, n in session.execute(sa.select(T_PRE.c.item_code, T_PRE.c.status, sa.func.count())
                                           .group_by(T_PRE.c.item_code, T_PRE.c.status)):
        out.setdefault(item, {})[status] = int(n)
    return out
