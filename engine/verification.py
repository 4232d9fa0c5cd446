"""What ``/verify/<编号>`` reports: the platform's record of a certificate or notice, and its signature.

The record says what was issued and whether it still holds (revoked, expired); the signature
check runs pyHanko's validator over the stored PDF, so the page shows that the bytes the platform
serves are the ones the unit signed.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from engine import certificates, seals
from engine.errors import EngineError
from engine.scans import read_evidence
from storage.documents import Evidence
from storage.notice_tables import CaseDocument
from storage.tables import Case, Unit


@dataclass(frozen=True)
class NumberCheck:
    number: str
    record: seals.DocRecord | None  # None: no certificate or notice has this number
    issuer: str  # 发证单位 / 签发单位
    valid_until: str  # for certificates: a date or 长期; empty for notices
    current: bool  # the record holds today (not revoked, not expired)
    signature: seals.VerifyReport | None  # None: no signed file stored (or unreadable: see ``reason``)
    valid: bool  # found, current, and its stored file's signature verifies
    reason: str  # zh-CN verdict


def check_number(session: Session, number: str) -> NumberCheck:
    cert = certificates.find(session, number)
    if cert is not None:
        ok, why = certificates.status(cert, clock.today())
        record = seals.DocRecord(kind="certificate", number=cert.number, title=cert.title, holder=cert.holder,
                                 issued_at=cert.issued_at, status="有效" if ok else why)
        until = cert.valid_until.isoformat() if cert.valid_until else "长期"
        return _with_signature(session, record, certificates.issuer(session, cert), until, ok, why,
                               cert.bucket, cert.object_key)
    found = session.execute(sa.select(CaseDocument, Case.applicant, Unit.name)
                            .join(Case, Case.id == CaseDocument.case_id).join(Unit, Unit.id == CaseDocument.unit_id)
                            .where(CaseDocument.number == number)).first()
    if found is None:
        return NumberCheck(number=number, record=None, issuer="", valid_until="", current=False, signature=None,
                           valid=False, reason="未查到该编号: 本平台没有签发过这个证照或文书, 文件可能是伪造的")
    doc, applicant, unit_name = found
    record = seals.DocRecord(kind=doc.kind, number=doc.number, title=doc.title,
                             holder=str(applicant.get("name", "")), issued_at=doc.issued_at, status="已签发")
    evidence = session.get(Evidence, doc.evidence_id) if doc.evidence_id is not None else None
    return _with_signature(session, record, unit_name, "", True, "该文书由本平台签发",
                           evidence.bucket if evidence else None, evidence.key if evidence else None)


def _with_signature(session: Session, record: seals.DocRecord, issuer: str, until: str, current: bool,
                    why: str, bucket: str | None, key: str | None) -> NumberCheck:
    base = {"number": record.number, "record": record, "issuer": issuer, "valid_until": until, "current": current}
    if bucket is None or key is None:
        return NumberCheck(**base, signature=None, valid=False, reason=f"{why}; 文件尚未生成, 无法校验电子签章")
    try:
        data = b"".join(read_evidence(bucket, key))
    except EngineError as exc:
        return NumberCheck(**base, signature=None, valid=False, reason=f"{why}; 暂时无法读取存档文件: {exc.detail}")
    report = seals.verify_pdf(data, session)
    if not current:
        return NumberCheck(**base, signature=report, valid=False, reason=why)
    if not report.valid:
        return NumberCheck(**base, signature=report, valid=False, reason=f"存档文件的电子签章无效: {report.reason}")
    return NumberCheck(**base, signature=report, valid=True,
                       reason=f"真实有效: 由{report.unit}签发并加盖电子签章, 文件未被改动, 当前有效")
