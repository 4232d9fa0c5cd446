"""case_search: the search index of cases (pg_trgm on PostgreSQL, FTS5 trigram on SQLite)

Revision ID: 0020_case_search
Revises: 0018_outbox_notify
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_case_search"
down_revision = "0018_outbox_notify"
branch_labels = None
depends_on = None

SQLITE = [
    "CREATE VIRTUAL TABLE case_search_fts USING fts5(terms, content='case_search', content_rowid='case_id', "
    "tokenize='trigram')",
    "CREATE TRIGGER case_search_ai AFTER INSERT ON case_search BEGIN "
    "INSERT INTO case_search_fts(rowid, terms) VALUES (new.case_id, new.terms); END",
    "CREATE TRIGGER case_search_ad AFTER DELETE ON case_search BEGIN "
    "INSERT INTO case_search_fts(case_search_fts, rowid, terms) VALUES ('delete', old.case_id, old.terms); END",
    "CREATE TRIGGER case_search_au AFTER UPDATE ON case_search BEGIN "
    "INSERT INTO case_search_fts(case_search_fts, rowid, terms) VALUES ('delete', old.case_id, old.terms); "
    "INSERT INTO case_search_fts(rowid, terms) VALUES (new.case_id, new.terms); END",
]


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "case_search",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    if pg:
        op.execute("CREATE INDEX ix_case_search_trgm ON case_search USING gin (terms gin_trgm_ops)")
    else:
        for stmt in SQLITE:
            op.execute(stmt)
    # Cases taken in before this revision: indexed here, once (0032_search_speed rebuilds the index).
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, number, applicant FROM cases")).all()
    if rows:
        import json  # noqa: PLC0415
        bind.execute(sa.text("INSERT INTO case_search (case_id, terms) VALUES (:case_id, :terms)"), [
            {"case_id": r[0], "terms": terms_of(r[1], r[2] if isinstance(r[2], dict) else json.loads(r[2] or "{}"))}
            for r in rows])


def terms_of(number: str, applicant: dict) -> str:
    """What a case was found by at this revision, lower-cased, one field a line: number, name, ID
    number or credit code, phone (as written and digits only)."""
    phone = str(applicant.get("phone") or "")
    parts = [number, applicant.get("name") or "", applicant.get("id_number") or "", phone,
             "".join(ch for ch in phone if ch.isdigit())]
    return "\n".join(str(p).strip().lower() for p in parts)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for name in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS case_search_{name}")
        op.execute("DROP TABLE IF EXISTS case_search_fts")
    op.drop_table("case_search")
