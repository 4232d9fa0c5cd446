"""Idempotency-Key: a retried request gets the first answer and writes nothing new."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel import Session

from core.clock import now
from engine.errors import InvalidInput
from storage.tables import IdempotencyRecord


def request_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def replay(session: Session, clerk_id: int, key: str, req_hash: str) -> tuple[int, str] | None:
    rec = session.get(IdempotencyRecord, (clerk_id, key))
    if rec is None:
        return None
    if rec.request_hash != req_hash:
        raise InvalidInput("Idempotency-Key", "该键已用于另一个不同的请求")
    return rec.status_code, rec.body


def remember(session: Session, clerk_id: int, key: str, req_hash: str, status: int, body: str) -> None:
    """Stored in the same transaction as the effect, so both exist or neither does."""
    session.add(IdempotencyRecord(clerk_id=clerk_id, key=key, request_hash=req_hash,
                                  status_code=status, body=body, created_at=now()))
    session.flush()
