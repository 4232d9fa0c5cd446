"""Tamper-evident history: each event carries the hash of the previous event of its case.

The chain is keyed by the case number (known before the case row exists) and each case row
keeps the hash of its newest event, so an edited, deleted or re-ordered event — including the
last one — breaks verification.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
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


@dataclass(frozen=True)
class Break:
    number: str
    seq: int | None
    reason: str


def verify(session: Session, batch: int = 500) -> Iterator[Break | int]:
    """Yield the first broken link of every broken case, and finally the number of cases checked."""
    checked, last_id = 0, 0
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
            problem = _verify_case(session, case_id, number, last_hash, version)
            if problem:
                yield problem
    yield checked


def _verify_case(session: Session, case_id: int, number: str, last_hash: str | None,
                 version: int) -> Break | None:
    rows = session.execute(
        sa.select(T_HIST).where(T_HIST.c.case_id == case_id).order_by(T_HIST.c.seq)
    ).mappings()
    prev, expected_seq = None, 1
    for row in rows:
        if row["seq"] != expected_seq:
            return Break(number, expected_seq, f"缺少第 {expected_seq} 条事件 (下一条为第 {row['seq']} 条)")
        if row["prev_hash"] != prev:
            return Break(number, row["seq"], "前序哈希不匹配: 之前的事件被改动或删除")
        if event_hash(number, dict(row), prev) != row["hash"]:
            return Break(number, row["seq"], "事件内容与其哈希不符: 该事件被改动")
        prev, expected_seq = row["hash"], expected_seq + 1
    if prev != last_hash or expected_seq - 1 != version:
        return Break(number, expected_seq, "案件的最新哈希或版本与历史不符: 末尾事件被删除或改动")
    return None
