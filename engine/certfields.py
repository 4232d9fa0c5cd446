"""The data a certificate carries: checking what the applicant and the approver give, and
assembling a certificate's values from the case when it is issued."""

from __future__ import annotations

from datetime import date
from typing import Any

from engine import applicants, idcodes
from engine.errors import InvalidInput
from states.certs import specs_approved_by
from states.schema import CertificateField, CertificateSpec, ItemDefinition


def invalid(errors: list[dict[str, str]]) -> InvalidInput:
    """One problem naming every bad field: the approver fixes them all in one go."""
    exc = InvalidInput(errors[0]["field"], errors[0]["reason"])
    exc.extra["errors"] = errors
    exc.detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return exc


def value_problem(f: CertificateField, value: Any) -> str | None:
    """Why ``value`` does not do for field ``f`` (in Chinese), or None."""
    if not isinstance(value, str):
        return f"「{f.label}」须为文本"
    if not value.strip():
        return f"「{f.label}」不能为空"
    if len(value) > f.max_length:
        return f"「{f.label}」不能超过 {f.max_length} 个字符"
    if f.validation == "credit_code":
        return idcodes.credit_code_problem(value)
    if f.validation == "id_number":
        return idcodes.id_number_problem(value)
    if f.validation == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return f"「{f.label}」须为日期 (YYYY-MM-DD)"
        if len(value) != 10:
            return f"「{f.label}」须为日期 (YYYY-MM-DD)"
    return None


def check_applicant(d: ItemDefinition, applicant: dict[str, Any]) -> None:
    """At intake: the applicant's 证件号码 is checked as what its kind says (a company's 统一社会
    信用代码, a person's 公民身份号码), and every present code or date an item's certificate reads
    from the application is checked by its field's rule. Missing values are the approval's concern."""
    errors = applicants.identity_problems(applicant)  # 证件类型 and the check characters, the agent's too
    seen = {"applicant.id_number"}
    for spec in d.certificates:
        for f in spec.fields:
            # Codes and dates: text is as long as the application's own schema lets it be.
            if f.source != "application" or f.path in seen or f.path is None or f.validation == "text":
                continue
            seen.add(f.path)
            value = applicant.get(f.path.removeprefix("applicant."))
            if value is not None and (problem := value_problem(f, value)):
                errors.append({"field": f.path, "reason": problem})
    if errors:
        raise invalid(errors)


def approval_values(d: ItemDefinition, trigger: str, applicant: dict[str, Any],
                    data: dict[str, Any] | None) -> dict[str, str] | None:
    """When ``trigger`` approves a certificate with fields the approver fills in: those values,
    checked (``data.certificate.<id>``), and the application's required values present. None
    when the trigger approves no such certificate. Refused as a whole, naming every field."""
    specs = specs_approved_by(d, trigger)
    if not specs:
        return None
    given = (data or {}).get("certificate")
    if given is not None and not isinstance(given, dict):
        raise invalid([{"field": "data.certificate", "reason": "须为对象: 字段编号 → 值"}])
    given = given or {}
    wanted = {f.id: f for spec in specs for f in spec.fields if f.source == "approval"}
    errors = [{"field": f"data.certificate.{k}", "reason": "证照没有此字段"} for k in given if k not in wanted]
    out: dict[str, str] = {}
    for fid, f in wanted.items():
        value = given.get(fid)
        if value is None or (isinstance(value, str) and not value.strip()):
            if f.required:
                errors.append({"field": f"data.certificate.{fid}", "reason": f"须填写证照字段「{f.label}」"})
            continue
        problem = value_problem(f, value)
        if problem:
            errors.append({"field": f"data.certificate.{fid}", "reason": problem})
        else:
            out[fid] = value.strip()
    for spec in specs:
        for f in spec.fields:
            if f.source == "application" and f.required and f.path is not None \
                    and not applicant.get(f.path.removeprefix("applicant.")):
                errors.append({"field": f.path,
                               "reason": f"申请信息缺少证照字段「{f.label}」, 须先补正申请信息"})
    if errors:
        raise invalid(errors)
    return out


def values(spec: CertificateSpec, applicant: dict[str, Any], approved: dict[str, str],
           computed: dict[str, str]) -> dict[str, str]:
    """Every field's value on the issued certificate, in declaration order (missing optional
    ones are empty)."""
    out = {}
    for f in spec.fields:
        if f.source == "application" and f.path is not None:
            out[f.id] = str(applicant.get(f.path.removeprefix("applicant.")) or "")
        elif f.source == "approval":
            out[f.id] = approved.get(f.id, "")
        else:
            out[f.id] = computed.get(f.compute or "", "")
    return out


def approval_form(d: ItemDefinition, trigger: str) -> list[dict[str, Any]]:
    """The inputs a page shows beside an approving trigger's button: a field two certificates of a
    bundle share (the 统一社会信用代码 on both) is asked once and read by both."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs_approved_by(d, trigger):
        for f in spec.fields:
            if f.source == "approval" and f.id not in out:
                out[f.id] = {"id": f.id, "label": f.label, "required": f.required, "validation": f.validation,
                             "max_length": f.max_length, "certificate": spec.name}
    return list(out.values())
