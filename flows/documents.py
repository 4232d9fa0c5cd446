"""制作文书: draw a notice issued by a transition, sign it, store it as evidence, record its digest.

The number and the facts were fixed when the notice was issued (``engine.documents``), except
those its kind reads again at drawing (the 收件凭证's pages), kept with it once drawn; this job
only draws them and signs the PDF with the issuing unit's seal (PAdES, ``engine.seals``). A retry
finds the notice already drawn and stores nothing; a reprint reads the stored bytes, so the
applicant and the clerk always get the document that was issued.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine import catalog, documents, scans, seals
from engine.actors import SYSTEM
from engine.extensions import JOBS
from engine.pdf import notice_layout, notice_pdf
from flows.effects import effect
from storage.db import session_scope
from storage.documents import T_EVID
from storage.notice_tables import T_DOC
from storage.rows import OutboxJobRow
from storage.tables import T_CASE


def draw(doc: dict[str, Any]) -> bytes:
    """The notice's PDF from its recorded facts (same facts, same bytes)."""
    facts = dict(doc["data"])
    if facts.get("query_code_sealed"):
        facts["query_code"] = documents.open_code(facts["case_number"], facts["query_code_sealed"]) \
            or "(见收件时出具的回执)"
    layout = notice_layout(doc["kind"], facts["item_code"], facts)
    return notice_pdf(layout, f"{doc['title']} {doc['number']}", f"{facts['unit']['name']}　{doc['number']}")


def _facts_at_drawing(s: Session, doc: dict[str, Any]) -> dict[str, Any]:
    """The recorded facts, with what its kind reads again at drawing (the 收件凭证's pages)."""
    kind = documents.kind_of(doc["kind"])
    if kind is None or kind.refresh is None:
        return dict(doc["data"])
    case = s.execute(sa.select(T_CASE.c.item_version_id).where(T_CASE.c.id == doc["case_id"])).one()
    item = catalog.compiled(s, case.item_version_id)
    return {**doc["data"], **kind.refresh(s, doc["case_id"], item, doc["data"])}


@JOBS.register("render_document", "制作文书")
def render_document(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    doc_id = int((job["payload"] or {})["document_id"])
    with session_scope(engine, readonly=True) as s:
        doc = documents.document(s, doc_id)
        pdf = None
        if doc is not None and doc["evidence_id"] is None:
            # Drawn and signed outside the write transaction; the signed bytes are what is kept.
            doc["data"] = facts = _facts_at_drawing(s, doc)
            pdf = seals.sign_pdf(s, doc["unit_id"], draw(doc), reason=f"{doc['title']} {doc['number']}",
                                 location=facts["unit"]["region"] or facts["unit"]["name"])
    if doc is None:
        raise LookupError(f"文书 #{doc_id} 不存在")
    with effect(engine, job) as eff:
        # Two drawings of one notice (a print and leaving intake) may race: the first to commit wins,
        # the other stores nothing (the row is locked on PostgreSQL; SQLite has one writer).
        drawn = eff.session.execute(sa.select(T_DOC.c.evidence_id).where(T_DOC.c.id == doc_id)
                                    .with_for_update()).scalar_one()
        if pdf is None or drawn is not None:
            eff.result.update(document=doc["number"], reused=True)
            return eff.result
        stored = scans.store_evidence(eff.session, job["number"], "document", pdf, "application/pdf", SYSTEM,
                                      meta={"document": doc["number"], "kind": doc["kind"]})
        evidence_id = eff.session.execute(sa.select(sa.func.max(T_EVID.c.id)).where(
            T_EVID.c.case_id == doc["case_id"], T_EVID.c.sha256 == stored.sha256)).scalar_one()
        eff.session.execute(sa.update(T_DOC).where(T_DOC.c.id == doc_id, T_DOC.c.evidence_id.is_(None))
                            .values(evidence_id=evidence_id, sha256=stored.sha256, data=doc["data"]))
        eff.result.update(document=doc["number"], sha256=stored.sha256, key=stored.key)
    return eff.result
