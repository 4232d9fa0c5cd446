"""certificate library: GB/T 36903 metadata on certificates, several per decision (bundles)

Revision ID: 0016_certificate_library
Revises: 0015_seals
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_certificate_library"
down_revision = "0015_seals"
branch_labels = None
depends_on = None

# The unique constraints of 0003 were created unnamed: on SQLite they are found by this
# convention while batch mode copies the table; PostgreSQL named them itself.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
OLD_UNIQUE = ({"case_id", "decision_seq"}, {"job_id"})


def _old_unique_names() -> list[str]:
    """The old keys' names as the database knows them (unnamed ones by the convention above)."""
    found = sa.inspect(op.get_bind()).get_unique_constraints("certificates")
    names = []
    for columns in OLD_UNIQUE:
        for uc in found:
            if set(uc["column_names"]) == columns:
                names.append(uc["name"] or f"uq_certificates_{'_'.join(uc['column_names'])}")
    return names

COLUMNS = [
    ("cert_key", sa.String(length=64), "certificate"),
    ("state", sa.String(length=16), "issued"),
    ("cert_type", sa.String(length=64), ""),
    ("holder_code", sa.String(length=32), ""),
    ("holder_code_type", sa.String(length=16), ""),
    ("issuer_name", sa.String(), ""),
    ("issuer_code", sa.String(length=18), ""),
]


def _batch(recreate: str = "auto"):  # type: ignore[no-untyped-def]
    dialect = op.get_bind().dialect.name
    return op.batch_alter_table("certificates", recreate=recreate,
                                naming_convention=SQLITE_NAMES if dialect == "sqlite" else None)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with _batch() as batch_op:
        for name, type_, default in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=False, server_default=default))
        batch_op.add_column(sa.Column("unit_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("data", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("revoked_reason", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("revoked_by", sa.String(), nullable=True))
    # Existing certificates are the library's too: their type is their title, their issuer
    # the unit of the counter that issued them.
    op.execute("UPDATE certificates SET cert_type = title, valid_from = CAST(issued_at AS DATE)")
    op.execute("UPDATE certificates SET unit_id = (SELECT counters.unit_id FROM counters "
               "WHERE counters.id = certificates.counter_id)")
    with _batch() as batch_op:
        for name, _, _ in COLUMNS:
            batch_op.alter_column(name, server_default=None)
    old = _old_unique_names()
    with _batch(recreate="always" if dialect == "sqlite" else "auto") as batch_op:
        for name in old:
            batch_op.drop_constraint(name, type_="unique")
        batch_op.create_unique_constraint("uq_certificates_case_decision_key", ["case_id", "decision_seq", "cert_key"])
        batch_op.create_index("ix_certificates_cert_type", ["cert_type"], unique=False)
        batch_op.create_index("ix_certificates_holder_code", ["holder_code"], unique=False)
        batch_op.create_index("ix_certificates_job_id", ["job_id"], unique=False)
        batch_op.create_foreign_key("fk_certificates_unit_id", "units", ["unit_id"], ["id"])


def downgrade() -> None:
    with _batch() as batch_op:
        batch_op.drop_constraint("fk_certificates_unit_id", type_="foreignkey")
        batch_op.drop_index("ix_certificates_job_id")
        batch_op.drop_index("ix_certificates_holder_code")
        batch_op.drop_index("ix_certificates_cert_type")
        batch_op.drop_constraint("uq_certificates_case_decision_key", type_="unique")
        batch_op.create_unique_constraint("certificates_case_id_decision_seq_key", ["case_id", "decision_seq"])
        batch_op.create_unique_constraint("certificates_job_id_key", ["job_id"])
        for name in ("revoked_by", "revoked_reason", "data", "valid_from", "unit_id",
                     *(c[0] for c in COLUMNS)):
            batch_op.drop_column(name)
