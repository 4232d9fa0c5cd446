"""Issued certificates (证照): looking one up, a case's list, and whether one is still valid."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from engine.errors import NotFound
from storage.flow_tables import Certificate
from storage.tables import Counter


def find(session: Session, number: str) -> Certificate | None:
    return session.execute(sa.select(Certificate).where(Certificate.number == number)).scalar_one_or_none()


def get(session: Session, number: str) -> Certificate:
    cert = find(session, number)
    if cert is None:
        raise NotFound(f"证照 {number} 不存在")
    return cert


def of_case(session: Session, case_id: int) -> list[Certificate]:
    return list(session.execute(sa.select(Certificate).where(Certificate.case_id == case_id)
                                .order_by(Certificate.decision_seq)).scalars())


def status(cert: Certificate, today: date) -> tuple[bool, str]:
    """(valid, why) as the verification page says it."""
    if cert.revoked_at is not None:
        return False, "该证照已被撤销, 不再有效"
    if cert.valid_until is not None and cert.valid_until < today:
        return False, f"该证照已于 {cert.valid_until} 过期"
    return True, "真实有效: 该证照由本平台签发, 当前在有效期内"


def issuer(session: Session, cert: Certificate) -> str:
    """The issuing unit's name (发证单位)."""
    counter = session.get(Counter, cert.counter_id)
    return (counter.unit or counter.name) if counter else cert.counter_id
