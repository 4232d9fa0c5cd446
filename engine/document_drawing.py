"""A clerk's print of a notice that waits to be drawn (the 收件凭证 before the case leaves intake):
queue its drawing now, with the pages scanned so far; a notice already drawn is printed as it is."""

from __future__ import annotations

from sqlmodel import Session

from core.clock import now
from engine import documents
from engine.access import require_case_reader
from engine.actors import Actor
from engine.advance import enqueue_documents, load_case
from engine.errors import NotFound


def request_drawing(session: Session, number: str, actor: Actor, kind: str) -> bool:
    """Queue the drawing of the case's ``kind`` notice if it waits for one; True when a job was
    queued (False: already drawn or already queued). NotFound when the case has no such notice."""
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    if not any(d["kind"] == kind for d in documents.list_for_case(session, case["id"])):
        raise NotFound(f"办件 {number} 没有{documents.title_of(kind)}")
    waiting = documents.waiting(session, case["id"], kind)
    enqueue_documents(session, case, waiting, now(), drawing=True)
    return bool(waiting)
