"""The written notices (文书) of a case, each declared once: its title, the step that issues it,
which unit issues it, and the facts its template states (``catalog/documents/<kind>.xml.j2``).

The steps are derived from the item's graph, so an item needs no declaration: 受理 is leaving the
intake phase, 补正 entering a status-6 state, 特别程序 entering any other pausing state, the
decision entering a decided state, 送达 reaching the approved end. Items may override (``documents:``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from core.clock import local_date
from core.settings import get_settings
from engine import situations
from engine.certificates import taken_from_library
from engine.documents import (
    EXTENSION,
    INTAKE,
    LEAVING_INTAKE,
    MAX_TEXT,
    TRANSITION,
    Step,
    clip,
    cn_date,
    seal_code,
)
from engine.errors import InvalidInput
from engine.extensions import DOCUMENTS
from engine.statements import (
    SELECT_CERTIFICATES,
    SELECT_DOCUMENT_OF_KIND,
    SELECT_DOCUMENTS_OF_KIND,
    SELECT_MATERIALS,
    SELECT_PAGE_COUNTS,
    SELECT_WAYBILL,
)
from states.compiler import CompiledItem

# 行政复议法 art. 20 (sixty days) and 行政诉讼法 art. 46 (six months): what a refusal must tell.
REVIEW_DAYS, LAWSUIT_MONTHS = 60, 6
STATUS_WORDS = {"received": "已收取", "missing": "未提交", "deferred": "容缺(承诺补交)"}


def _remedies(step: Step) -> dict[str, Any]:
    return {"review_days": REVIEW_DAYS, "lawsuit_months": LAWSUIT_MONTHS}


def _materials(step: Step) -> list[dict[str, Any]]:
    return materials_of(step.session, step.case["id"], step.item, {})


def materials_of(session: Session, case_id: int, item: CompiledItem,
                 library: dict[str, Any]) -> list[dict[str, Any]]:
    """Each material of the case as a notice lists it: received, missing, deferred, or 免提交 (taken
    from the certificate library at 收件, ``library``: material id → certificate), with its pages.
    A material only a 情形 answer asks for is the case's when its answers chose it (it has a row, as
    the ``required_materials`` guard reads it): a 收件凭证 or 补正通知 never lists, as 未提交, a
    授权委托书 the applicant who came in person was never asked for."""
    statuses = {r["material_id"]: r["status"] for r in SELECT_MATERIALS.all(session, {"case_id": case_id})}
    pages = {r["material_id"]: r["pages"] for r in SELECT_PAGE_COUNTS.all(session, {"case_id": case_id})}
    optional = situations.conditional(item.definition)
    out = []
    own = [m for m in item.definition.materials if m.id not in optional or m.id in statuses]
    for i, m in enumerate(own, 1):
        status = statuses.get(m.id, "missing")
        label = STATUS_WORDS.get(status, status)
        if m.id in library:
            cert = library[m.id]
            title = cert.get("title") or cert.get("type") or "电子证照"
            label = f"免提交：{title} {cert.get('certificate', '')}".rstrip()
        out.append({"no": i, "id": m.id, "name": m.name, "copies": m.copies, "status": status,
                    "status_label": label, "pages": int(pages.get(m.id, 0)), "required": m.required,
                    "library": m.id in library})
    return out


def _base_url() -> str:
    return get_settings().public_base_url.rstrip("/")


def _receipt_at_drawing(session: Session, case_id: int, item: CompiledItem,
                        facts: dict[str, Any]) -> dict[str, Any]:
    """The materials and their pages as they stand when the 收件凭证 is drawn (the scans follow 收件)."""
    return {"materials": materials_of(session, case_id, item, facts.get("library") or {})}


@DOCUMENTS.register("receipt", "收件凭证", title="收件凭证", event=INTAKE, issuer="intake",
                    when=lambda step: True, drawn=LEAVING_INTAKE, refresh=_receipt_at_drawing)
def receipt(step: Step) -> dict[str, Any]:
    """行政许可法 art. 32: what was received, pages per material, how to follow the case. Numbered at
    收件, drawn when the case leaves the intake phase or the clerk prints it (the pages by then)."""
    code = step.extra.get("query_code")
    library = taken_from_library(step.event.get("data"))
    return {"materials": materials_of(step.session, step.case["id"], step.item, library), "library": library,
            "query_code_sealed": seal_code(step.case["number"], code) if code else None,
            "progress_url": f"{_base_url()}/progress", "companion": step.actor.name,
            "supplement_notice_due": cn_date(step.case.get("supplement_notice_due"))}


def _accepts(step: Step) -> bool:
    """Leaving the intake phase, the first time: a case sent back to intake and accepted again
    keeps the 受理 it had (and its periods, ``engine.deadlines``)."""
    before, after = step.top(step.before), step.top(step.after)
    if before not in step.item.intake_phase or after in step.item.intake_phase or step.state(step.after).final:
        return False
    return SELECT_DOCUMENT_OF_KIND.first(step.session, {"case_id": step.case["id"], "kind": "acceptance"}) is None


@DOCUMENTS.register("acceptance", "受理通知书", title="受理通知书", event=TRANSITION, issuer="competent",
                    when=_accepts)
def acceptance(step: Step) -> dict[str, Any]:
    """行政许可法 art. 32 and 42: accepted, and by when the decision is due."""
    case = step.case
    return {"accepted_on": cn_date(local_date(case["accepted_at"]) if case.get("accepted_at") else None),
            "promised_due": cn_date(case.get("promised_due")), "legal_due": cn_date(case.get("legal_due")),
            "promised_days": step.item.definition.limits.promised_days,
            "legal_days": step.item.definition.limits.legal_days,
            "provisional": bool(case.get("deadline_provisional"))}


def _outcome(step: Step) -> str | None:
    s = step.state(step.after)
    return s.outcome if s is not None and s.final else None


@DOCUMENTS.register("refusal", "不予受理决定书", title="不予受理决定书", event=TRANSITION, issuer="holder",
                    when=lambda step: _outcome(step) == "not_accepted")
def refusal(step: Step) -> dict[str, Any]:
    """行政许可法 art. 32: not accepted, the reasons, and the applicant's remedies."""
    return {"reasons": _reasons(step), **_remedies(step)}


def _reasons(step: Step) -> list[str]:
    text = clip(step.event.get("comment"), MAX_TEXT)
    return [line.strip() for line in text.splitlines() if line.strip()] or ["(未说明)"]


def _supplements(step: Step) -> bool:
    return step.status(step.after) == 6 and step.status(step.before) != 6


@DOCUMENTS.register("supplement", "补正材料通知书", title="补正材料通知书", event=TRANSITION, issuer="holder",
                    when=_supplements)
def supplement(step: Step) -> dict[str, Any]:
    """行政许可法 art. 32: every missing or faulty material at once, each with its reason.

    The clerk's ticks arrive as ``data.supplement: [{material, reason}]``; without them the notice
    lists the required materials not received, with the step's comment as the reason."""
    materials = {m["id"]: m for m in _materials(step)}
    ticks = (step.event.get("data") or {}).get("supplement")
    comment = clip(step.event.get("comment"), MAX_TEXT)
    if ticks is not None:
        ticks = check_supplement(step.item.definition.materials, ticks)
        items = [{"no": i, "name": materials[t["material"]]["name"], "reason": t["reason"]}
                 for i, t in enumerate(ticks, 1)]
    else:
        lacking = [m for m in materials.values() if m["status"] == "missing" and m["required"]]
        items = [{"no": i, "name": m["name"], "reason": comment or "未提交"} for i, m in enumerate(lacking, 1)]
    return {"items": items, "note": comment, "deadline_note": "补正材料齐全之日起重新计算办理时限"}


def check_supplement(materials: list[Any], ticks: Any) -> list[dict[str, str]]:
    """The clerk's per-material ticks for a 补正 notice, validated (field + reason on a problem)."""
    if not isinstance(ticks, list) or not ticks:
        raise InvalidInput("data.supplement", "请勾选需补正的材料并逐项说明理由")
    known = {m.id for m in materials}
    out, seen = [], set()
    for i, t in enumerate(ticks):
        field = f"data.supplement[{i}]"
        if not isinstance(t, dict):
            raise InvalidInput(field, "须为 {material, reason}")
        mid, reason = t.get("material"), str(t.get("reason") or "").strip()
        if mid not in known:
            raise InvalidInput(f"{field}.material", f"事项没有材料 '{mid}'")
        if mid in seen:
            raise InvalidInput(f"{field}.material", "同一材料只能勾选一次")
        if not reason:
            raise InvalidInput(f"{field}.reason", "须逐项说明需补正的理由")
        seen.add(mid)
        out.append({"material": str(mid), "reason": reason[:500]})
    return out


@DOCUMENTS.register("extension", "延期通知书", title="延期通知书", event=EXTENSION, issuer="competent",
                    when=lambda step: True)
def extension(step: Step) -> dict[str, Any]:
    """行政许可法 art. 42: the period extended, by how much, why, the new date."""
    data = step.event.get("data") or {}
    return {"days": data.get("days"), "legal_due_before": _iso_cn(data.get("legal_due_before")),
            "legal_due": _iso_cn(data.get("legal_due")), "approver": data.get("approver", step.actor.name),
            "reasons": _reasons(step), "provisional": bool(step.case.get("deadline_provisional"))}


def _iso_cn(text: str | None) -> str:
    return cn_date(date.fromisoformat(text)) if text else ""


def _special(step: Step) -> bool:
    after, before = step.state(step.after), step.state(step.before)
    return (after.clock == "pause" and step.status(step.after) != 6
            and (before is None or before.clock != "pause"))


@DOCUMENTS.register("special_procedure", "特别程序告知书", title="特别程序告知书", event=TRANSITION,
                    issuer="competent", when=_special)
def special_procedure(step: Step) -> dict[str, Any]:
    """行政许可法 art. 45: which procedure, the time it needs, and that it does not count."""
    rule = step.item.definition.documents.get("special_procedure")
    days = (step.event.get("data") or {}).get("expected_days") or (rule.days if rule else None)
    return {"procedure": step.state(step.after).label, "days": days}


@DOCUMENTS.register("rejection", "不予许可决定书", title="不予许可决定书", event=TRANSITION, issuer="holder",
                    when=lambda step: _outcome(step) == "rejected")
def rejection(step: Step) -> dict[str, Any]:
    """行政许可法 art. 38: the reasons for refusing the licence, and the remedies."""
    return {"reasons": _reasons(step), **_remedies(step)}


def _decides(step: Step) -> bool:
    decided = step.item.decided
    return step.top(step.after) in decided and step.top(step.before) not in decided \
        and not step.state(step.after).final


@DOCUMENTS.register("approval", "准予许可决定书", title="准予许可决定书", event=TRANSITION, issuer="competent",
                    when=_decides)
def approval(step: Step) -> dict[str, Any]:
    """行政许可法 art. 38 and 44: granted, and the certificate within ten working days; with what
    the approver entered for the certificate at this step (an item's own template may state it)."""
    d = step.item.definition
    printed = {f.id: f.label for c in d.certificates for f in c.fields if f.printed}
    entered = (step.event.get("data") or {}).get("certificate") or {}
    return {"certificate": d.certificate_name or "",
            "certificate_due": cn_date(step.case.get("certificate_due")),
            "commitment": bool(step.case.get("commitment")),
            "entered": {k: clip(v, 1000) for k, v in entered.items() if k in printed} if isinstance(entered, dict)
            else {}}


@DOCUMENTS.register("service", "送达回证", title="送达回证", event=TRANSITION, issuer="holder",
                    when=lambda step: _outcome(step) == "approved")
def service(step: Step) -> dict[str, Any]:
    """送达回证: what was served on the applicant, how, by whom; the applicant signs on paper."""
    s, case_id = step.session, step.case["id"]
    served = [*SELECT_DOCUMENTS_OF_KIND.all(s, {"case_id": case_id, "kind": "approval"}),
              *SELECT_CERTIFICATES.all(s, {"case_id": case_id})]
    mailed = SELECT_WAYBILL.first(s, {"case_id": case_id})
    how = f"邮寄送达({mailed['carrier']} {mailed['number']})" if mailed else "直接送达"
    return {"served": served, "method": how, "server": step.actor.name}
