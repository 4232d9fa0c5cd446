"""Tamper-evident history: each event carries the hash of the previous event of its case.

The chain is keyed by the case number (known before the case row exists) and each case row
keeps the hash of its newest event, so an edited, deleted or re-ordered event — including the
last one — breaks verification.

That alone does not stop whoever can write the database: they can edit an event and recompute
every hash after it. Signed anchors (``engine.anchors``) record each case's version and newest
hash outside the database; ``verify`` given an anchor also finds a chain rewritten, truncated or
deleted since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session

from storage.rows import CaseRow, HistoryRow, NewHistoryEvent
from storage.tables import T_CASE, T_HIST

HASHED_FIELDS = ("seq", "at", "kind", "actor_id", "actor_name", "counter_id", "trigger",
                 "from_state", "to_state", "comment", "data")


def _at(value: datetime) -> str:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def event_hash(number: str, event: NewHistoryEvent | HistoryRow, prev_hash: str | None) -> str:
    body = {k: event.get(k) for k in HASHED_FIELDS}
    body["at"] = _at(event["at"])
    raw = json.dumps([number, prev_hash, body], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def chain(case: CaseRow, events: list[NewHistoryEvent]) -> None:
    """Link ``events`` (in seq order) onto the case's chain; updates ``case['last_hash']``."""
    for e in events:
        e["prev_hash"] = case.get("last_hash")
        e["hash"] = case["last_hash"] = event_hash(case["number"], e, e["prev_hash"])


# What an anchor recorded of a case: its version and the hash of its newest event then.
Anchored = Mapping[str, tuple[int, str | None]]


@dataclass(frozen=True)
class Break:
    number: str
    seq: int | None
    reason: str
    # broken: the chain disagrees with itself; against an anchor: rewritten, truncated, deleted.
    kind: str = "broken"


def verify(session: Session, batch: int = 500, anchored: Anchored | None = None) -> Iterator[Break | int]:
    """Yield the first broken link of every broken case, and finally the number of cases checked.

    With ``anchored``, each anchored case's chain must still pass through the anchored head at the
    anchored version (events after it are fine), and an anchored case that is gone is reported."""
    checked, last_id = 0, 0
    missing = dict(anchored or {})
    while True:
        cases = session.execute(
            sa.select(T_CASE.c.id, T_CASE.c.number, T_CASE.c.last_hash, T_CASE.c.version)
            .where(T_CASE.c.id > last_id).order_by(T_CASE.c.id).limit(batch)
        ).all()
        if not cases:
            break
        for case_id, number, last_hash, version in cases:
            checked += 1
            last_id = case_id
            problem = _verify_case(session, case_id, number, last_hash, version, missing.pop(number, None))
            if problem:
                yield problem
    for number, (version, _) in sorted(missing.items()):
        yield Break(number, None, f"办件被删除: 锚点记录了该办件 (版本 {version}), 数据库中已没有", "deleted")
    yield checked


def _verify_case(session: Session, case_id: int, number: str, last_hash: str | None,
                 version: int, anchor: tuple[int, str | None] | None = None) -> Break | None:
    rows = session.execute(
        sa.select(T_HIST).where(T_HIST.c.case_id == case_id).order_by(T_HIST.c.seq)
    ).mappings()
    prev, expected_seq, at_anchor = None, 1, None
    for row in rows:
        if row["seq"] != expected_seq:
            return Break(number, expected_seq, f"缺少第 {expected_seq} 条事件 (下一条为第 {row['seq']} 条)")
        if row["prev_hash"] != prev:
            return Break(number, row["seq"], "前序哈希不匹配: 之前的事件被改动或删除")
        if event_hash(number, dict(row), prev) != row["hash"]:
            return Break(number, row["seq"], "事件内容与其哈希不符: 该事件被改动")
        if anchor is not None and row["seq"] == anchor[0]:
            at_anchor = row["hash"]
        prev, expected_seq = row["hash"], expected_seq + 1
    if prev != last_hash or expected_seq - 1 != version:
        return Break(number, expected_seq, "办件的最新哈希或版本与历史不符: 末尾事件被删除或改动")
    return against_anchor(number, version, at_anchor, anchor)


def against_anchor(number: str, version: int, hash_at_anchored_seq: str | None,
                   anchor: tuple[int, str | None] | None) -> Break | None:
    """A case whose own chain holds, judged against what an anchor recorded of it."""
    if anchor is None:
        return None
    anchored_version, anchored_hash = anchor
    if version < anchored_version:
        return Break(number, version + 1, f"历史被截断: 锚点记录了 {anchored_version} 条事件, 现在只有 {version} 条",
                     "truncated")
    if hash_at_anchored_seq != anchored_hash:
        return Break(number, anchored_version, "历史被改写: 该事件及之前的哈希链与锚点记录的不符", "rewritten")
    return None
