"""The flows' seam to object storage (issue #3's ``engine.scans``): certificates and waybills
are stored as case evidence; the hand-off reads the materials manifest and copies pages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from engine import scans
from engine.actors import SYSTEM
from storage.object_factory import get_store


@dataclass(frozen=True)
class Stored:
    bucket: str
    key: str
    sha256: str
    size: int


def store_evidence(session: Session, number: str, data: bytes, content_type: str, *, kind: str,
                   meta: dict[str, Any] | None = None) -> Stored:
    """Object first (content-addressed, retained), then the evidence row in the caller's transaction."""
    info = scans.store_evidence(session, number, kind, data, content_type, SYSTEM, meta=meta)
    return Stored(info.bucket, info.key, info.sha256, info.size)


def read_evidence(bucket: str, key: str) -> bytes:
    return b"".join(get_store().get(bucket, key))


def manifest(session: Session, number: str) -> list[dict[str, Any]]:
    """Every current page of the case with its sha256 (issue #3's page table)."""
    return scans.manifest(session, number)


def stored_sha256(bucket: str, key: str) -> str | None:
    """The sha256 of the bytes actually stored (read and hashed: a key alone proves nothing)."""
    store = get_store()
    if store.stat(bucket, key) is None:
        return None
    h = hashlib.sha256()
    for chunk in store.get(bucket, key):
        h.update(chunk)
    return h.hexdigest()


def replicate(session: Session, number: str, region_code: str) -> list[dict[str, Any]]:
    return scans.replicate(session, number, region_code)
