"""Units' signing keys and certificates (电子印章): what notices and certificates are signed with.

A unit has one current seal (``retired_at`` empty) and keeps its retired ones: a document signed
years ago still names the certificate it was signed with, and verifying it needs that certificate
as a trust anchor. The private key is stored sealed (AES-GCM under the installation's seal key,
``engine.seals``), so the database alone — a backup, a replica — cannot sign.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class UnitSeal(SQLModel, table=True):
    __tablename__ = "unit_seals"
    id: int | None = Field(default=None, primary_key=True)
    unit_id: str = Field(foreign_key="units.id", max_length=32, index=True)
    unit_name: str = Field(max_length=200)
    # SHA-256 of the signing certificate's DER, hex: how a signature finds its seal row.
    fingerprint: str = Field(max_length=64, unique=True)
    certificate_pem: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # The rest of the chain from the unit's CA (PEM, the issuer first); empty for a self-signed seal.
    chain_pem: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    # 12-byte nonce + AES-GCM of the PKCS#8 DER private key, bound to unit and fingerprint.
    sealed_key: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    source: str = Field(max_length=16)  # created | imported
    subject: str = Field(max_length=500)
    not_before: datetime = Field(sa_type=UTC_TS)
    not_after: datetime = Field(sa_type=UTC_TS)
    created_at: datetime = Field(sa_type=UTC_TS)
    retired_at: datetime | None = Field(default=None, sa_type=UTC_TS)


T_SEAL = UnitSeal.__table__
