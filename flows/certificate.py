"""出证: a decision's certificates — one per declared certificate, each numbered by its issuing
unit, drawn with the data it carries, signed with that unit's seal — stored as evidence and
released together.

Three steps, so that no transaction is held while a PDF is drawn and signed:
1. numbering, in a transaction of its own: each certificate's number from its unit's sequence
   (``engine.docnumbers``) and its row (state ``numbered``) with the data and dates it states;
   a replay of the job finds the rows and keeps their numbers, a racing duplicate fails on the
   (case, decision, certificate) key and rolls its numbers back — no gaps, no second number;
2. drawing and signing (the unit's seal image on the page, its PAdES signature over the file),
   outside any write transaction;
3. the effect (``flows.effects``): the PDFs stored as evidence, the rows ``issued``, the job
   marked done and the follow-up (出证) fired, all in one transaction.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import jinja2
import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from core.settings import get_settings
from engine import catalog, certfields, docnumbers, idcodes, scans, seals
from engine.actors import SYSTEM
from engine.advance import load_case
from engine.extensions import JOBS
from engine.pdf import TEMPLATES, certificate_pdf
from flows.effects import effect
from states.certs import approving_triggers
from states.schema import CertificateSpec, ItemDefinition
from storage.db import session_scope
from storage.flow_tables import Certificate
from storage.rows import CaseRow, OutboxJobRow
from storage.tables import T_HIST, Counter, Unit

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined)


@dataclass
class Planned:
    """A numbered certificate of the decision, with what its PDF shows."""

    row_id: int
    number: str
    state: str
    unit_id: str | None
    layout: list[str]
    context: dict[str, Any]


def decision_seq(session: Session, case_id: int, payload: dict[str, Any]) -> int:
    """The history seq of the approval that started this job: the decision a certificate is for."""
    q = sa.select(sa.func.max(T_HIST.c.seq)).where(T_HIST.c.case_id == case_id,
                                                   T_HIST.c.kind == "transition")
    if payload.get("trigger"):
        q = q.where(T_HIST.c.trigger == payload["trigger"])
    return session.execute(q).scalar_one() or 0


def add_years(issued: date, years: int) -> date:
    try:
        return issued.replace(year=issued.year + years)
    except ValueError:  # 29 February
        return issued.replace(year=issued.year + years, day=28)


def valid_until(spec: CertificateSpec, issued_on: date, values: dict[str, str]) -> date | None:
    """The last day of validity, None for 长期."""
    v = spec.validity
    if v is None:
        return add_years(issued_on, get_settings().certificate_valid_years)
    if v.long_term:
        return None
    if v.years is not None:
        return add_years(issued_on, v.years)
    return date.fromisoformat(values[v.until or ""])


def cn_date(d: date | None) -> str:
    return f"{d.year}年{d.month:02d}月{d.day:02d}日" if d else "长期"


def verify_url(number: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/verify/{number}"


def layout_names(d: ItemDefinition, spec: CertificateSpec) -> list[str]:
    """The templates tried for a certificate, the item's own first."""
    own = [spec.layout] if spec.layout else []
    return [*own, f"certificate_{d.code}_{spec.id}.xml.j2", f"certificate_{d.code}.xml.j2", "certificate.xml.j2"]


def render_layout(names: list[str], context: dict[str, Any]) -> ET.Element:
    template = _env.select_template(names)
    return ET.fromstring(template.render(**context))


def approved_values(session: Session, d: ItemDefinition, spec: CertificateSpec, case_id: int,
                    upto: int) -> dict[str, str]:
    """What the approver entered for this certificate at its approving trigger (the latest one
    up to the decision)."""
    triggers = approving_triggers(d, spec)
    row = session.execute(sa.select(T_HIST.c.data).where(
        T_HIST.c.case_id == case_id, T_HIST.c.kind == "transition", T_HIST.c.seq <= upto,
        T_HIST.c.trigger.in_(triggers)).order_by(T_HIST.c.seq.desc()).limit(1)).scalar_one_or_none()
    return dict((row or {}).get("certificate") or {})


def _issuer(session: Session, case: CaseRow, spec: CertificateSpec) -> tuple[Counter, Unit | None]:
    counter_id = case["parties"].get(spec.issuer) or case["competent_counter_id"]
    counter = session.get(Counter, counter_id)
    assert counter is not None, counter_id
    return counter, (session.get(Unit, counter.unit_id) if counter.unit_id else None)


def _plan_new(session: Session, d: ItemDefinition, spec: CertificateSpec, case: CaseRow, seq: int,
              issued_at: datetime, job: OutboxJobRow) -> Certificate:
    """Number one certificate and record what it states (in the numbering transaction)."""
    counter, unit = _issuer(session, case, spec)
    issued_on = clock.local_date(issued_at)
    applicant = case["applicant"]
    approved = approved_values(session, d, spec, case["id"], seq)
    issuer_name = unit.name if unit else (counter.unit or counter.name)
    computed = {"holder": applicant.get("name", ""), "holder_code": applicant.get("id_number") or "",
                "item_name": d.name, "case_number": case["number"], "issuer": issuer_name,
                "issued_on": issued_on.isoformat(), "valid_from": issued_on.isoformat()}
    values = certfields.values(spec, applicant, approved, computed)
    until = valid_until(spec, issued_on, values)
    computed.update(valid_until=until.isoformat() if until else "长期",
                    validity=f"{cn_date(issued_on)}至{cn_date(until)}")
    values = certfields.values(spec, applicant, approved, computed)
    holder = values.get(spec.holder or "") or applicant.get("name", "")
    holder_code = (values.get(spec.holder_code or "") if spec.holder_code else applicant.get("id_number")) or ""
    code_type = ""
    if holder_code:
        code_type = "统一社会信用代码" if idcodes.is_credit_code(holder_code) else \
            "公民身份号码" if idcodes.is_id_number(holder_code) else "其他"
    if unit is not None:
        number = docnumbers.allocate(session, unit.id, "certificate", issued_on.year)
    else:  # a counter outside the directory's units: the case's own numbering
        number = f"{d.code}-{case['number']}-{seq:02d}-{spec.id}"[:40]
    row = Certificate(
        number=number, case_id=case["id"], decision_seq=seq, cert_key=spec.id, job_id=job["id"],
        state="numbered", item_code=d.code, title=spec.name, holder=holder, counter_id=counter.id,
        issued_at=issued_at, valid_from=issued_on, valid_until=until, cert_type=spec.kind,
        holder_code=holder_code.upper(), holder_code_type=code_type, unit_id=unit.id if unit else None,
        issuer_name=issuer_name, issuer_code=unit.code if unit else "",
        data=[{"id": f.id, "label": f.label, "value": values[f.id], "printed": f.printed} for f in spec.fields],
        bucket="", object_key="", sha256="", size=0)
    session.add(row)
    session.flush()
    return row


def _context(d: ItemDefinition, row: Certificate, counter_name: str) -> dict[str, Any]:
    fields = [f for f in (row.data or []) if f.get("printed", True)]
    issued_on = clock.local_date(row.issued_at)
    return {
        "title": row.title, "number": row.number, "holder": row.holder, "holder_code": row.holder_code,
        "address": None, "item_name": d.name, "case_number": "",
        "fields": fields, "values": {f["id"]: f["value"] for f in row.data or []},
        "issued_on": issued_on.isoformat(), "issued_on_cn": cn_date(issued_on),
        "valid_from": (row.valid_from or issued_on).isoformat(),
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "validity": f"{cn_date(row.valid_from or issued_on)}至{cn_date(row.valid_until)}"
                    if row.valid_until else "长期",
        "unit": row.issuer_name, "unit_code": row.issuer_code, "counter_name": counter_name,
        "verify_url": verify_url(row.number),
    }


def number_certificates(engine: sa.Engine, job: OutboxJobRow) -> list[Planned]:
    """Step 1: the decision's certificates numbered and recorded (or found, on a replay)."""
    for attempt in range(2):
        try:
            with session_scope(engine) as s:
                case = load_case(s, job["number"])
                d = catalog.compiled(s, case["item_version_id"]).definition
                seq = decision_seq(s, case["id"], job["payload"] or {})
                decided_at = s.execute(sa.select(T_HIST.c.at).where(
                    T_HIST.c.case_id == case["id"], T_HIST.c.seq == seq)).scalar_one_or_none()
                issued_at = decided_at or case["updated_at"]
                specs = d.certificates or [CertificateSpec(name=f"{d.name}决定书")]
                existing = {r.cert_key: r for r in s.execute(sa.select(Certificate).where(
                    Certificate.case_id == case["id"], Certificate.decision_seq == seq)).scalars()}
                plans = []
                for spec in specs:
                    row = existing.get(spec.id) or _plan_new(s, d, spec, case, seq, issued_at, job)
                    counter = s.get(Counter, row.counter_id)
                    context = {**_context(d, row, counter.name if counter else ""), "case_number": case["number"]}
                    plans.append(Planned(row.id or 0, row.number, row.state, row.unit_id, layout_names(d, spec),
                                         context))
                return plans
        except sa.exc.IntegrityError:
            # A racing run of the same decision committed its rows first (ours and our numbers
            # rolled back): the second attempt finds and uses them.
            if attempt:
                raise
    raise AssertionError("unreachable")


def draw(plan: Planned) -> bytes:
    """The PDF as drawn (same inputs, same bytes), before it is signed."""
    layout = render_layout(plan.layout, plan.context)
    return certificate_pdf(layout, plan.context["verify_url"], f"{plan.context['title']} {plan.number}")


def draw_and_sign(engine: sa.Engine, plan: Planned) -> bytes:
    """Step 2: drawn, then signed with the issuing unit's seal (PAdES), outside any write
    transaction; the signed bytes are what is stored and served on every reprint."""
    pdf = draw(plan)
    if plan.unit_id is None:  # a counter outside the directory's units has no seal to sign with
        return pdf
    with session_scope(engine, readonly=True) as s:
        return seals.sign_pdf(s, plan.unit_id, pdf, reason=f"{plan.context['title']} {plan.number}",
                              location=plan.context["unit"])


@JOBS.register("issue_certificate", "制发证照", follow_ups=("issue", "issue_all"))
def issue_certificate(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    plans = number_certificates(engine, job)
    pdfs = {p.row_id: draw_and_sign(engine, p) for p in plans if p.state != "issued"}
    with effect(engine, job) as eff:
        issued = []
        for p in plans:
            row = eff.session.get(Certificate, p.row_id, with_for_update=True)  # one run stores it
            assert row is not None
            if row.state != "issued":
                stored = scans.store_evidence(eff.session, job["number"], "certificate", pdfs[p.row_id],
                                              "application/pdf", SYSTEM, meta={"certificate": p.number})
                row.bucket, row.object_key, row.sha256, row.size = stored.bucket, stored.key, stored.sha256, stored.size
                row.state = "issued"
                eff.session.add(row)
            issued.append({"number": row.number, "title": row.title, "sha256": row.sha256})
        eff.session.flush()
        numbers = [c["number"] for c in issued]
        eff.result.update(certificate=numbers[0], certificates=issued, reused=not pdfs)
        eff.payload = {"comment": f"证照已制发: {'、'.join(numbers)}",
                       "data": {"certificate": numbers[0], "certificates": numbers}}
    return eff.result
