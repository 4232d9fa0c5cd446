"""The one place video touches scans and evidence: ``engine.scans`` does the work.

Stills and files sent in a room are filed by the clerk who asked for them when that clerk's
counter holds the case, otherwise by the system actor (``add_page`` lets the system file
captured stills); the room's own history event names the person either way.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from sqlmodel import Session

from engine import scans
from engine.actors import SYSTEM, Actor
from engine.advance import holder_counters, load_case
from engine.catalog import compiled
from storage.objects import ObjectStore
from storage.rows import CaseRow

RECORDING_KIND = "recording"


def filing_actor(session: Session, number: str, actor: Actor) -> Actor:
    case = load_case(session, number)
    holders = holder_counters(compiled(session, case["item_version_id"]), case)
    return actor if actor.id is not None and actor.counter_id in holders else SYSTEM


def add_page(session: Session, number: str, material_id: str, data: bytes, declared_name: str,
             actor: Actor, store: ObjectStore | None = None) -> dict[str, Any]:
    """Validated like any upload (type sniffed, decodable, size); a new page of ``material_id``."""
    return scans.add_page(session, number, material_id, data, declared_name,
                          filing_actor(session, number, actor), store=store)


def store_evidence(session: Session, case: CaseRow, data: BinaryIO, content_type: str,
                   actor: Actor, meta: dict[str, Any], store: ObjectStore | None = None) -> dict[str, Any]:
    info = scans.store_evidence(session, case, RECORDING_KIND, data, content_type, actor,
                                store=store, meta=meta)
    return {"bucket": info.bucket, "key": info.key, "sha256": info.sha256, "size": info.size}
