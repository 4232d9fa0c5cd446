"""Reading a case's notices and certificates: the clerk's list, and the applicant's download.

Both serve the bytes stored when the document was drawn (evidence): a reprint is that document,
under the same number, never a new one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from engine import scans
from engine.access import require_case_reader
from engine.actors import Actor
from engine.advance import load_case
from engine.documents import list_for_case
from engine.errors import Conflict, NotFound
from engine.lifecycle import applicants_case
from storage.documents import T_EVID
from storage.objects import ObjectStore


def _evidence_id(session: Session, case_id: int, entry: dict[str, Any]) -> int | None:
    if entry["kind"] != "certificate":
        return entry["evidence_id"]
    return session.execute(sa.select(sa.func.min(T_EVID.c.id)).where(
        T_EVID.c.case_id == case_id, T_EVID.c.sha256 == entry["sha256"])).scalar_one_or_none()


def entries(session: Session, number: str, actor: Actor) -> list[dict[str, Any]]:
    """The list a clerk sees: kind, number, title, issued_at (China time), sha256, content_url
    (the evidence download, recorded in the case's history); a notice not drawn yet has neither."""
    return [{k: v for k, v in e.items() if k != "evidence_id"} for e in with_evidence(session, number, actor)]


def with_evidence(session: Session, number: str, actor: Actor) -> list[dict[str, Any]]:
    """``entries`` with each one's ``evidence_id`` (for the case page's print links)."""
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    out = []
    for e in list_for_case(session, case["id"]):
        evidence = _evidence_id(session, case["id"], e) if e["sha256"] else None
        out.append({"kind": e["kind"], "number": e["number"], "title": e["title"],
                    "issued_at": clock.local(e["issued_at"]), "sha256": e["sha256"], "evidence_id": evidence,
                    "content_url": f"/api/v1/cases/{quote(number)}/evidence/{evidence}/content" if evidence else None})
    return out


def for_applicant(session: Session, number: str, code: str) -> list[dict[str, Any]]:
    """The documents an applicant may download with the query code (a wrong code: not found)."""
    case = applicants_case(session, number, code)
    return [{"kind": e["kind"], "number": e["number"], "title": e["title"], "issued_at": clock.local(e["issued_at"]),
             "sha256": e["sha256"]} for e in list_for_case(session, case["id"])]


def applicant_download(session: Session, number: str, code: str, doc_number: str,
                       *, store: ObjectStore | None = None) -> scans.Download:
    case = applicants_case(session, number, code)
    entry = next((e for e in list_for_case(session, case["id"]) if e["number"] == doc_number), None)
    if entry is None:
        raise NotFound(f"办件 {number} 没有文书 {doc_number}")
    if not entry["sha256"] or not entry["key"]:
        raise Conflict("文书正在制作, 请稍后再试", field="document")
    size = session.execute(sa.select(T_EVID.c.size).where(
        T_EVID.c.case_id == case["id"], T_EVID.c.sha256 == entry["sha256"]).limit(1)).scalar_one_or_none() or 0
    return scans.Download("application/pdf", int(size), entry["sha256"], f"{number}-{entry['kind']}.pdf",
                          stream=scans.read_evidence(entry["bucket"], entry["key"], store=store))
