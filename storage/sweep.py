"""Find, and on request remove, objects no row refers to (``tongban storage sweep``).

Objects are written before their rows, so an upload that failed between the two leaves an
orphan. Only objects older than the grace period count: a young object may still be waiting
for its row (a re-upload of stored bytes refreshes the object's time for the same reason).
A withdrawn page keeps its row (history) but stops protecting its object once it has been
withdrawn for longer than the grace period. Retained evidence is listed but never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from storage.documents import T_EVID, T_PAGE
from storage.objects import ObjectInfo, ObjectLocked, ObjectStore, bucket_for
from storage.prereview_tables import T_DRAFT


@dataclass
class SweepReport:
    orphans: list[ObjectInfo] = field(default_factory=list)
    deleted: list[ObjectInfo] = field(default_factory=list)
    retained: list[ObjectInfo] = field(default_factory=list)  # orphans under retention
    young: int = 0  # unreferenced but inside the grace period
    referenced: int = 0


def referenced_keys(session: Session, cutoff: datetime) -> set[tuple[str, str]]:
    refs: set[tuple[str, str]] = set()
    live = sa.or_(T_PAGE.c.withdrawn_at.is_(None), T_PAGE.c.withdrawn_at > cutoff)
    for b, k, t in session.execute(
            sa.select(T_PAGE.c.bucket, T_PAGE.c.key, T_PAGE.c.thumbnail_key).where(live)):
        refs.add((b, k))
        if t:
            refs.add((b, t))
    refs.update((b, k) for b, k in session.execute(sa.select(T_EVID.c.bucket, T_EVID.c.key)))
    refs.update((b, k) for b, k in session.execute(  # 要件预审 drafts (engine.prereview_purge deletes them)
        sa.select(T_DRAFT.c.bucket, T_DRAFT.c.key).where(T_DRAFT.c.key.is_not(None))))
    return refs


def sweep(session: Session, store: ObjectStore, *, prefix: str, grace_seconds: int,
          delete: bool = False, at: datetime | None = None) -> SweepReport:
    """Walk every bucket named ``<prefix>-…``; a dry run unless ``delete``."""
    cutoff = (at or datetime.now(UTC)) - timedelta(seconds=grace_seconds)
    refs = referenced_keys(session, cutoff)
    report = SweepReport()
    anchors = bucket_for("evidence", "anchors", prefix=prefix)  # history anchors: no row names them
    for bucket in store.buckets():
        if not bucket.startswith(f"{prefix}-") or bucket == anchors:
            continue
        for obj in store.list(bucket):
            if (bucket, obj.key) in refs:
                report.referenced += 1
            elif obj.created_at is not None and obj.created_at > cutoff:
                report.young += 1
            else:
                report.orphans.append(obj)
                if delete:
                    try:
                        store.delete(bucket, obj.key)
                        report.deleted.append(obj)
                    except ObjectLocked:
                        report.retained.append(obj)
    return report
