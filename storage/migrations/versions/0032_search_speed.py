"""search speed: the name alone in the trigram index, B-tree keys (exact, prefix, last digits, the
name's character pairs) and the counters taking part, so a search at 1,000,000 cases stays in
index look-ups (storage.search_tables)

Revision ID: 0032_search_speed
Revises: 0031_kiosk_video
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0032_search_speed"
down_revision = "0031_kiosk_video"
branch_labels = None
depends_on = None


def _fts(column: str) -> list[str]:
    return [
        f"CREATE VIRTUAL TABLE case_search_fts USING fts5({column}, content='case_search', "
        "content_rowid='case_id', tokenize='trigram')",
        "CREATE TRIGGER case_search_ai AFTER INSERT ON case_search BEGIN "
        f"INSERT INTO case_search_fts(rowid, {column}) VALUES (new.case_id, new.{column}); END",
        "CREATE TRIGGER case_search_ad AFTER DELETE ON case_search BEGIN "
        f"INSERT INTO case_search_fts(case_search_fts, rowid, {column}) VALUES ('delete', old.case_id, "
        f"old.{column}); END",
        "CREATE TRIGGER case_search_au AFTER UPDATE ON case_search BEGIN "
        f"INSERT INTO case_search_fts(case_search_fts, rowid, {column}) VALUES ('delete', old.case_id, "
        f"old.{column}); INSERT INTO case_search_fts(rowid, {column}) VALUES (new.case_id, new.{column}); END",
    ]


def _drop_search(pg: bool) -> None:
    if pg:
        op.execute("DROP INDEX IF EXISTS ix_case_search_trgm")
    else:
        for name in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS case_search_{name}")
        op.execute("DROP TABLE IF EXISTS case_search_fts")
    op.drop_table("case_search")


def _create_search(pg: bool, column: str) -> None:
    op.create_table(
        "case_search",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column(column, sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    if pg:
        op.execute(f"CREATE INDEX ix_case_search_trgm ON case_search USING gin ({column} gin_trgm_ops)")
    else:
        for stmt in _fts(column):
            op.execute(stmt)


def _cases(bind: sa.Connection, columns: str):  # noqa: ANN202  (rows of cases, a chunk at a time)
    last = 0
    while True:
        rows = bind.execute(sa.text(f"SELECT id, {columns} FROM cases WHERE id > :last ORDER BY id LIMIT 5000"),
                            {"last": last}).all()
        if not rows:
            return
        yield [tuple(json.loads(v) if isinstance(v, str) and v[:1] == "{" else v for v in r) for r in rows]
        last = rows[-1][0]


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    _drop_search(pg)
    _create_search(pg, "name")
    op.create_table(
        "case_search_keys",
        sa.Column("key", sa.Text(collation="C") if pg else sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("key", "case_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "case_search_counters",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["counter_id"], ["counters.id"]),
        sa.PrimaryKeyConstraint("case_id", "counter_id"),
        sqlite_with_rowid=False,
    )
    # Cases taken in before this revision: indexed here, once, by the engine's own definition.
    from storage.search_tables import (  # noqa: PLC0415
        T_SEARCH,
        T_SEARCH_COUNTERS,
        T_SEARCH_KEYS,
        index_rows,
    )
    for chunk in _cases(bind, "number, applicant, parties"):
        rows = [index_rows(cid, number, applicant or {}, parties or {}) for cid, number, applicant, parties in chunk]
        bind.execute(sa.insert(T_SEARCH), [r[0] for r in rows])
        if keys := [k for r in rows for k in r[1]]:
            bind.execute(sa.insert(T_SEARCH_KEYS), keys)
        if counters := [c for r in rows for c in r[2]]:
            bind.execute(sa.insert(T_SEARCH_COUNTERS), counters)


def downgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    op.drop_table("case_search_counters")
    op.drop_table("case_search_keys")
    _drop_search(pg)
    _create_search(pg, "terms")
    for chunk in _cases(bind, "number, applicant"):
        rows = []
        for cid, number, applicant in chunk:
            a = applicant or {}
            phone = str(a.get("phone") or "")
            parts = [number, a.get("name") or "", a.get("id_number") or "", phone,
                     "".join(ch for ch in phone if ch.isdigit())]
            rows.append({"case_id": cid, "terms": "\n".join(str(p).strip().lower() for p in parts)})
        bind.execute(sa.text("INSERT INTO case_search (case_id, terms) VALUES (:case_id, :terms)"), rows)
