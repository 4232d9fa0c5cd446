"""digest indexes: the public /verify page finds an uploaded PDF's record by its SHA-256
(``engine.seals.find_record``), in certificates and in case_documents; without an index each
look-up read every row of both tables

Revision ID: 0033_digest_indexes
Revises: 0032_search_speed
"""

from alembic import op

revision = "0033_digest_indexes"
down_revision = "0032_search_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_certificates_sha256", "certificates", ["sha256"])
    op.create_index("ix_case_documents_sha256", "case_documents", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_case_documents_sha256", "case_documents")
    op.drop_index("ix_certificates_sha256", "certificates")
