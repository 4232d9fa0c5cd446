"""Hand-off between regional counters (异地代收代办): manifest check, object copy, 接件."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

from core.clock import now
from core.settings import get_settings
from engine.actors import Actor
from engine.advance import append_event, load_case
from engine.extensions import JOBS
from engine.scans import manifest, replicate
from flows.effects import effect
from storage.db import session_scope
from storage.object_factory import get_store
from storage.rows import OutboxJobRow
from storage.tables import Counter


class ManifestMismatch(Exception):
    """A page's stored bytes do not match the sha256 the case recorded: refuse the hand-off."""


@JOBS.register("handoff", "跨域移交")
def handoff(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    p = job["payload"] or {}
    to_counter = p.get("to_counter") or job["counter_id"]
    from_counter = p.get("from_counter")
    with session_scope(engine) as s:
        pages = manifest(s, job["number"])
        regions = dict(s.execute(sa.select(Counter.id, Counter.region_code).where(
            Counter.id.in_([c for c in (from_counter, to_counter) if c]))).all())
        dest = s.get(Counter, to_counter)
        assert dest is not None
    # The manifest: every page's stored bytes must still hash to what the case recorded.
    bad = [f"#{pg['id']}" for pg in pages if stored_sha256(pg["bucket"], pg["key"]) != pg["sha256"]]
    if bad:
        raise ManifestMismatch(f"材料清单校验失败 ({len(bad)} 页): {', '.join(bad[:5])}")
    copied = 0
    src_region, dst_region = regions.get(from_counter or ""), regions.get(to_counter)
    if get_settings().region_buckets and pages and src_region != dst_region and dst_region:
        with session_scope(engine) as s:
            copied = len(replicate(s, job["number"], dst_region))
    receiver = Actor(None, "系统(跨域接件)", to_counter, dest.region_code, frozenset({"system"}))
    with effect(engine, job) as eff:
        case = load_case(eff.session, job["number"])
        data = {"from_counter": from_counter, "to_counter": to_counter,
                "pages_checked": len(pages), "sha256": [pg["sha256"] for pg in pages],
                "objects_copied": copied, "job_id": job["id"]}
        append_event(eff.session, case, None, now(), "handoff", receiver, data,
                     comment=f"{dest.name} 已接件")
        eff.result.update(data)
    return eff.result


def stored_sha256(bucket: str, key: str) -> str | None:
    """The sha256 of the bytes actually stored (read and hashed: a key alone proves nothing)."""
    store = get_store()
    if store.stat(bucket, key) is None:
        return None
    h = hashlib.sha256()
    for chunk in store.get(bucket, key):
        h.update(chunk)
    return h.hexdigest()
