"""Finding cases: by number, applicant name (substring), ID number or credit code (exact or last
digits), phone; across open and finished cases the actor may read (engine.access), ranked.

The index (storage.search_tables) is written here, in the intake's transaction. PostgreSQL
answers the substring through pg_trgm's GIN index, SQLite through the FTS5 trigram table
(queries under three characters, e.g. a two-character name, fall back to a scan of the index).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from engine import catalog
from engine.access import require_case_reader
from engine.actors import Actor
from engine.errors import Forbidden, InvalidInput
from storage.rows import CaseRow
from storage.search_tables import T_SEARCH, terms_of
from storage.tables import T_CASE, ItemVersion

MAX_QUERY = 64
CANDIDATES = 500


def index_case(session: Session, case_id: int, number: str, applicant: dict[str, Any]) -> None:
    """The case's row in the index, in the caller's transaction."""
    session.execute(sa.delete(T_SEARCH).where(T_SEARCH.c.case_id == case_id))
    session.execute(sa.insert(T_SEARCH).values(case_id=case_id, terms=terms_of(number, applicant)))


def normalise(q: str) -> str:
    q = " ".join(q.split()).lower()
    if not q:
        raise InvalidInput("q", "检索词不能为空")
    if len(q) > MAX_QUERY:
        raise InvalidInput("q", f"检索词不能超过 {MAX_QUERY} 个字符")
    return q


def candidate_ids(session: Session, q: str, limit: int = CANDIDATES) -> list[int]:
    """Ids of cases whose terms contain ``q`` (normalised), newest first: the physical query."""
    if session.get_bind().dialect.name == "sqlite" and len(q) >= 3:
        phrase = '"' + q.replace('"', '""') + '"'
        sql = sa.text("SELECT rowid FROM case_search_fts WHERE case_search_fts MATCH :p ORDER BY rowid DESC LIMIT :n")
        return [r[0] for r in session.execute(sql, {"p": phrase, "n": limit})]
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = session.execute(sa.select(T_SEARCH.c.case_id).where(T_SEARCH.c.terms.like(pattern, escape="\\"))
                           .order_by(T_SEARCH.c.case_id.desc()).limit(limit))
    return [r[0] for r in rows]


def _rank(terms: str, q: str) -> int:
    """0 a field equals the query, 1 ends with it (last digits), 2 starts with it, 3 contains it."""
    best = 4
    for line in terms.split("\n"):
        if line == q:
            return 0
        if line.endswith(q):
            best = min(best, 1)
        elif line.startswith(q):
            best = min(best, 2)
        elif q in line:
            best = min(best, 3)
    return best


def _may_read(session: Session, actor: Actor, case: CaseRow) -> bool:
    try:
        require_case_reader(session, actor, case)
    except Forbidden:
        return False
    return True


def search(session: Session, actor: Actor, q: str, *, finished: bool | None = None,
           limit: int = 50, page: bool = False) -> dict[str, Any]:
    """Cases matching ``q`` that ``actor`` may read, best match first, then newest (``page``: with
    what the queue page shows, engine.views.queue_entry)."""
    from engine.views import queue_entry  # noqa: PLC0415  (views imports the queue's helpers)

    q = normalise(q)
    ids = candidate_ids(session, q)
    if not ids:
        return {"items": [], "next_cursor": None}
    terms = dict(session.execute(sa.select(T_SEARCH.c.case_id, T_SEARCH.c.terms)
                                 .where(T_SEARCH.c.case_id.in_(ids))).all())
    rows = session.execute(sa.select(T_CASE, ItemVersion.name.label("item_name"))
                           .join(ItemVersion, ItemVersion.id == T_CASE.c.item_version_id)
                           .where(T_CASE.c.id.in_(ids))).mappings().all()
    today = clock.today()
    ranked = sorted(rows, key=lambda r: (_rank(terms.get(r["id"], ""), q), -r["id"]))
    items = []
    for r in ranked:
        if finished is not None and (r["finished_at"] is not None) != finished:
            continue
        if not _may_read(session, actor, r):  # type: ignore[arg-type]
            continue
        items.append(queue_entry(session, r, r["item_name"], actor.counter_id, today, page=page))
        if len(items) >= limit:
            break
    return {"items": items, "next_cursor": None}


def check_filters(session: Session, *, state: str | None = None, item: str | None = None) -> None:
    """Unknown filter values are refused (422 naming the field), not answered with an empty list."""
    items = {it["code"] for it in catalog.list_items(session)}
    if item is not None and item not in items:
        raise InvalidInput("item", f"没有编码为 {item[:64]} 的事项")
    if state is not None:
        codes = [item] if item else sorted(items)
        known = {s.id for code in codes
                 for s in catalog.compiled(session, catalog.latest_version(session, code).id).definition.states}
        if state not in known:
            raise InvalidInput("state", f"事项中没有名为 {state[:64]} 的状态")
