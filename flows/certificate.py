"""出证: render a case's certificate, store it as evidence, and record exactly one per decision."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from core.settings import get_settings
from engine import catalog, scans
from engine.actors import SYSTEM
from engine.advance import load_case
from engine.extensions import JOBS
from engine.pdf import certificate_layout, certificate_pdf
from flows.effects import effect
from storage.db import session_scope
from storage.flow_tables import T_CERT, Certificate
from storage.rows import OutboxJobRow
from storage.tables import T_HIST, Counter


def decision_seq(session: Session, case_id: int, payload: dict[str, Any]) -> int:
    """The history seq of the approval that started this job: the decision a certificate is for."""
    q = sa.select(sa.func.max(T_HIST.c.seq)).where(T_HIST.c.case_id == case_id,
                                                   T_HIST.c.kind == "transition")
    if payload.get("trigger"):
        q = q.where(T_HIST.c.trigger == payload["trigger"])
    return session.execute(q).scalar_one() or 0


def _valid_until(issued: date, years: int) -> date:
    try:
        return issued.replace(year=issued.year + years)
    except ValueError:  # 29 February
        return issued.replace(year=issued.year + years, day=28)


def certificate_number(item_code: str, case_number: str, seq: int) -> str:
    return f"{item_code}-{case_number}-{seq:02d}"


def verify_url(number: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/verify/{number}"


@JOBS.register("issue_certificate", "制发证照", follow_ups=("issue", "issue_all"))
def issue_certificate(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    with session_scope(engine) as s:
        case = load_case(s, job["number"])
        d = catalog.compiled(s, case["item_version_id"]).definition
        seq = decision_seq(s, case["id"], job["payload"] or {})
        existing = s.execute(sa.select(T_CERT.c.number).where(
            T_CERT.c.case_id == case["id"], T_CERT.c.decision_seq == seq)).scalar_one_or_none()
        decided_at = s.execute(sa.select(T_HIST.c.at).where(
            T_HIST.c.case_id == case["id"], T_HIST.c.seq == seq)).scalar_one_or_none()
        counter = s.get(Counter, case["competent_counter_id"])
        assert counter is not None
        number = certificate_number(d.code, case["number"], seq)
        issued_at = decided_at or case["updated_at"]
        issued_on = clock.local_date(issued_at)
        valid_until = _valid_until(issued_on, get_settings().certificate_valid_years)
        pdf = None
        if existing is None:
            context = {
                "title": d.certificate or f"{d.name}决定书", "number": number,
                "holder": case["applicant"].get("name", ""),
                "address": case["applicant"].get("address"),
                "item_name": d.name, "case_number": case["number"],
                "issued_on": issued_on.isoformat(), "valid_until": valid_until.isoformat(),
                "unit": counter.unit or counter.name, "counter_name": counter.name,
                "verify_url": verify_url(number),
            }
            # Rendered outside the write transaction; same inputs give the same bytes.
            pdf = certificate_pdf(certificate_layout(d.code, context), context["verify_url"],
                                  f"{context['title']} {number}")
    with effect(engine, job) as eff:
        if pdf is None:
            eff.result.update(certificate=existing, reused=True)
        else:
            stored = scans.store_evidence(eff.session, case["number"], "certificate", pdf, "application/pdf",
                                          SYSTEM, meta={"certificate": number})
            eff.session.add(Certificate(
                number=number, case_id=case["id"], decision_seq=seq, job_id=job["id"],
                item_code=d.code, title=d.certificate or f"{d.name}决定书",
                holder=case["applicant"].get("name", ""), counter_id=counter.id,
                issued_at=issued_at, valid_until=valid_until, bucket=stored.bucket,
                object_key=stored.key, sha256=stored.sha256, size=stored.size))
            eff.session.flush()  # (case, decision) is unique: a racing duplicate fails here
            eff.result.update(certificate=number, key=stored.key, sha256=stored.sha256)
        eff.payload = {"comment": f"证照已制发: {eff.result['certificate']}",
                       "data": {"certificate": eff.result["certificate"]}}
    return eff.result
