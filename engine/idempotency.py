"""Idempotency-Key: a retried request gets the first answer and writes nothing new.

No secret rests in the kept answer. Fields the caller names (the intake's ``query_code``, which
opens the applicant's progress query) are taken out of the stored body and kept sealed with
AES-GCM under the installation's ``idempotency-key``, which lives in the data directory, never in
the database; a replay unseals them and answers the first answer again, byte for byte.

Why sealed rather than a fresh code issued on replay: a replay must stay a replay — the same
answer, nothing written. Issuing a new code would add an event and a version to the case, give
the retry another ETag than the first answer, and void a code the applicant may already hold
(the first answer can reach the counter's printer while its client still retries). A sealed
code is useless to whoever reads the database without the data directory, and it is gone when
its row expires (``idempotency_hours``; an older key counts as new and the sweep purges it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session

from core.clock import now
from core.install_secrets import install_key
from core.settings import get_settings
from engine.errors import InvalidInput
from storage.tables import IdempotencyRecord

NONCE_BYTES = 12


def request_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _cipher() -> AESGCM:
    return AESGCM(install_key("idempotency-key", get_settings().idempotency_key))


def _bound(clerk_id: int, key: str, req_hash: str) -> bytes:
    """Associated data: a sealed value opens only in the row it was sealed for."""
    return json.dumps([clerk_id, key, req_hash]).encode()


def _expired_before() -> datetime:
    return now() - timedelta(hours=get_settings().idempotency_hours)


def replay(session: Session, clerk_id: int, key: str, req_hash: str) -> tuple[int, str] | None:
    rec = session.get(IdempotencyRecord, (clerk_id, key))
    if rec is None:
        return None
    if rec.created_at < _expired_before():
        session.delete(rec)  # expired: the key is new again, and the request runs as a first one
        session.flush()
        return None
    if rec.request_hash != req_hash:
        raise InvalidInput("Idempotency-Key", "该键已用于另一个不同的请求")
    if not rec.sealed:
        return rec.status_code, rec.body
    raw = base64.b64decode(rec.sealed)
    try:
        opened = _cipher().decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _bound(clerk_id, key, req_hash))
    except InvalidTag:
        # Another installation key (or an edited row): the answer without its sealed fields is
        # still the case; the clerk reads the code nowhere else, but nothing is taken in twice.
        return rec.status_code, rec.body
    return rec.status_code, orjson.dumps(orjson.loads(rec.body) | orjson.loads(opened)).decode()


def remember(session: Session, clerk_id: int, key: str, req_hash: str, status: int, body: str,
             seal: tuple[str, ...] = ()) -> None:
    """Stored in the same transaction as the effect, so both exist or neither does. ``seal``
    names top-level fields of the JSON ``body`` that are secrets: they are stored encrypted."""
    sealed = None
    if seal:
        answer = orjson.loads(body)
        secret = {k: answer.pop(k) for k in seal if k in answer}
        body = orjson.dumps(answer).decode()
        nonce = os.urandom(NONCE_BYTES)
        ct = _cipher().encrypt(nonce, orjson.dumps(secret), _bound(clerk_id, key, req_hash))
        sealed = base64.b64encode(nonce + ct).decode()
    session.add(IdempotencyRecord(clerk_id=clerk_id, key=key, request_hash=req_hash,
                                  status_code=status, body=body, sealed=sealed, created_at=now()))
    session.flush()


def purge(session: Session) -> int:
    """Delete expired answers (the deadline sweep calls it); returns how many went."""
    result = session.execute(sa.delete(IdempotencyRecord)
                             .where(IdempotencyRecord.created_at < _expired_before()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
