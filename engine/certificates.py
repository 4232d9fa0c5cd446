"""Issued certificates (证照) and the certificate library (电子证照库): looking one up, a case's
list, a holder's certificates in GB/T 36903's terms, revocation, and whether one is valid."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from engine.actors import Actor
from engine.advance import append_event, case_number, load_case
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from states.schema import Material
from storage.flow_tables import Certificate
from storage.tables import Counter

ISSUED = "issued"
# 状态 as the library and /verify say it.
STATUS_LABELS = {"valid": "有效", "expired": "已过期", "revoked": "已撤销"}
LIBRARY_PAGE = 50


def _issued() -> sa.Select[tuple[Certificate]]:
    return sa.select(Certificate).where(Certificate.state == ISSUED)


def find(session: Session, number: str) -> Certificate | None:
    return session.execute(_issued().where(Certificate.number == number)).scalar_one_or_none()


def get(session: Session, number: str) -> Certificate:
    cert = find(session, number)
    if cert is None:
        raise NotFound(f"证照 {number} 不存在")
    return cert


def of_case(session: Session, case_id: int) -> list[Certificate]:
    return list(session.execute(_issued().where(Certificate.case_id == case_id)
                                .order_by(Certificate.decision_seq, Certificate.id)).scalars())


def state_of(cert: Certificate, today: date) -> str:
    """valid | expired | revoked, on ``today`` (a China calendar date)."""
    if cert.revoked_at is not None:
        return "revoked"
    if cert.valid_until is not None and cert.valid_until < today:
        return "expired"
    return "valid"


def status(cert: Certificate, today: date) -> tuple[bool, str]:
    """(valid, why) as the verification page says it."""
    state = state_of(cert, today)
    if state == "revoked":
        reason = f": {cert.revoked_reason}" if cert.revoked_reason else ""
        when = clock.local_date(cert.revoked_at).isoformat() if cert.revoked_at else ""
        return False, f"该证照已于 {when} 被撤销, 不再有效{reason}"
    if state == "expired":
        return False, f"该证照已于 {cert.valid_until} 过期"
    return True, "真实有效: 该证照由本平台签发, 当前在有效期内"


def issuer(session: Session, cert: Certificate) -> str:
    """The issuing unit's name (发证单位)."""
    if cert.issuer_name:
        return cert.issuer_name
    counter = session.get(Counter, cert.counter_id)
    return (counter.unit or counter.name) if counter else cert.counter_id


def metadata(cert: Certificate, today: date) -> dict[str, Any]:
    """The library's record of a certificate (GB/T 36903 电子证照元数据)."""
    state = state_of(cert, today)
    return {
        "type": cert.cert_type or cert.title, "number": cert.number, "title": cert.title,
        "holder": cert.holder, "holder_code": cert.holder_code, "holder_code_type": cert.holder_code_type,
        "issuer": cert.issuer_name, "issuer_code": cert.issuer_code, "issued_on": clock.local_date(cert.issued_at),
        "valid_from": cert.valid_from or clock.local_date(cert.issued_at), "valid_until": cert.valid_until,
        "status": state, "status_label": STATUS_LABELS[state], "item_code": cert.item_code,
        "data": [{"label": f["label"], "value": f["value"]} for f in (cert.data or []) if f.get("printed", True)],
        "sha256": cert.sha256, "pdf": f"/api/v1/certificates/{cert.number}/pdf",
        "verify": f"/verify/{cert.number}",
    }


def _cursor(cert_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": cert_id}).encode()).decode().rstrip("=")


def _after(cursor: str) -> int:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = int(raw["after"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("cursor", "游标无效") from None
    if not 0 <= after < 2**31:  # an id the table can hold, or the database refuses the number
        raise InvalidInput("cursor", "游标无效")
    return after


def library(session: Session, holder_code: str, *, cert_type: str | None = None,
            cursor: str | None = None, limit: int = LIBRARY_PAGE) -> tuple[list[dict[str, Any]], str | None]:
    """A holder's certificates, oldest first, a page at a time: (records, next cursor)."""
    holder_code = holder_code.strip().upper()
    if not holder_code:
        raise InvalidInput("holder_code", "须给出持证主体代码 (统一社会信用代码或公民身份号码)")
    q = _issued().where(Certificate.holder_code == holder_code)
    if cert_type:
        q = q.where(Certificate.cert_type == cert_type)
    if cursor:
        q = q.where(Certificate.id > _after(cursor))
    rows = list(session.execute(q.order_by(Certificate.id).limit(limit + 1)).scalars())
    today = clock.today()
    more = len(rows) > limit
    rows = rows[:limit]
    return [metadata(r, today) for r in rows], (_cursor(rows[-1].id or 0) if more and rows else None)


def held(session: Session, holder_code: str, cert_type: str, today: date) -> Certificate | None:
    """免提交: the newest valid certificate of ``cert_type`` held under ``holder_code``."""
    if not holder_code:
        return None
    rows = session.execute(_issued().where(Certificate.holder_code == holder_code.upper(),
                                           Certificate.cert_type == cert_type)
                           .order_by(Certificate.id.desc())).scalars()
    return next((r for r in rows if state_of(r, today) == "valid"), None)


def revoke(session: Session, number: str, actor: Actor, reason: str) -> Certificate:
    """撤销: an approver of the issuing counter, or a supervisor, withdraws a certificate; /verify
    and the library say so from then on, and the case's history records it."""
    cert = get(session, number)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason", "须说明撤销理由")
    if "supervisor" not in actor.roles and not ("approver" in actor.roles and actor.counter_id == cert.counter_id):
        raise Forbidden("只有发证窗口的审批签发人员或督查人员可以撤销证照", missing=["role:approver|supervisor"])
    if cert.revoked_at is not None:
        raise Conflict(f"证照 {number} 已于 {clock.local_date(cert.revoked_at)} 撤销")
    at = clock.now()
    case = load_case(session, case_number(session, cert.case_id), lock=True)
    append_event(session, case, None, at, "certificate_revoked", actor,
                 {"certificate": number, "reason": reason})
    cert.revoked_at, cert.revoked_reason, cert.revoked_by = at, reason, actor.name
    session.add(cert)
    session.flush()
    return cert



def from_library(session: Session, materials: list[Material], applicant: dict[str, Any],
                 today: date) -> dict[str, dict[str, str]]:
    """免提交 at intake: for each material marked ``library: <证照类型>``, the valid certificate of
    that type the applicant holds under their code (material id → number, title, issuer)."""
    code = (applicant.get("id_number") or "").upper()
    out = {}
    for m in materials:
        if m.library and code and (cert := held(session, code, m.library, today)) is not None:
            out[m.id] = {"certificate": cert.number, "title": cert.title, "issuer": cert.issuer_name,
                         "type": m.library}
    return out


def taken_from_library(history_data: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """Which materials intake took from the library (recorded in the intake event)."""
    return dict((history_data or {}).get("library") or {})
