"""制作文书: draw a notice issued by a transition, sign it, store it as evidence, record its digest.

The number and the facts were fixed when the notice was issued (``engine.documents``); this job
only draws them and signs the PDF with the issuing unit's seal (PAdES, ``engine.seals``). A retry
finds the notice already drawn and stores nothing; a reprint reads the stored bytes, so the
applicant and the clerk always get the document that was issued.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine import documents, scans, seals
from engine.actors import SYSTEM
from engine.extensions import JOBS
from engine.pdf import notice_layout, notice_pdf
from flows.effects import effect
from storage.db import session_scope
from storage.documents import T_EVID
from storage.notice_tables import T_DOC
from storage.rows import OutboxJobRow


def draw(doc: dict[str, Any]) -> bytes:
    """The notice's PDF from its recorded facts (same facts, same bytes)."""
    facts = dict(doc["data"])
    if facts.get("query_code_sealed"):
        facts["query_code"] = documents.open_code(facts["case_number"], facts["query_code_sealed"]) \
            or "(见收件时出具的回执)"
    layout = notice_layout(doc["kind"], facts["item_code"], facts)
    return notice_pdf(layout, f"{doc['title']} {doc['number']}", f"{facts['unit']['name']}　{doc['number']}")


@JOBS.register("render_document", "制作文书")
def render_document(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    doc_id = int((job["payload"] or {})["document_id"])
    with session_scope(engine, readonly=True) as s:
        doc = documents.document(s, doc_id)
        pdf = None
        if doc is not None and doc["evidence_id"] is None:
            # Drawn and signed outside the write transaction; the signed bytes are what is kept.
            facts = doc["data"]
            pdf = seals.sign_pdf(s, doc["unit_id"], draw(doc), reason=f"{doc['title']} {doc['number']}",
                                 location=facts["unit"]["region"] or facts["unit"]["name"])
    if doc is None:
        raise LookupError(f"文书 #{doc_id} 不存在")
    with effect(engine, job) as eff:
        if pdf is None:
            eff.result.update(document=doc["number"], reused=True)
            return eff.result
        stored = scans.store_evidence(eff.session, job["number"], "document", pdf, "application/pdf", SYSTEM,
                                      meta={"document": doc["number"], "kind": doc["kind"]})
        evidence_id = eff.session.execute(sa.select(sa.func.max(T_EVID.c.id)).where(
            T_EVID.c.case_id == doc["case_id"], T_EVID.c.sha256 == stored.sha256)).scalar_one()
        eff.session.execute(sa.update(T_DOC).where(T_DOC.c.id == doc_id, T_DOC.c.evidence_id.is_(None))
                            .values(evidence_id=evidence_id, sha256=stored.sha256))
        eff.result.update(document=doc["number"], sha256=stored.sha256, key=stored.key)
    return eff.result
