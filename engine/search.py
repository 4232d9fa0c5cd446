"""Finding cases: by number, applicant name (substring), ID number or credit code (exact or last
digits), phone (whole, first or last digits); across open and finished cases the actor may read
(engine.access), ranked: a field equal to the query, then ending with it (last digits), then
starting with it, then a name containing it; newest first within each.

Every tier is one index query that already leaves out what the actor may not read (the counters
taking part, storage.search_tables) and stops at the page's size: B-tree key look-ups and ranges
for exact, prefix and last digits and for two-character names, the trigram index (FTS5 on SQLite,
pg_trgm on PostgreSQL) for longer name substrings. The index is written here, in the intake's
transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core import clock
from engine import catalog, workdays
from engine.access import readable_counters
from engine.actors import Actor
from engine.errors import InvalidInput
from storage.search_tables import T_SEARCH, T_SEARCH_COUNTERS, T_SEARCH_KEYS, TOP, digits, index_rows
from storage.tables import T_CASE, ItemVersion

MAX_QUERY = 64
# A prefix or last digits shared by more readable cases than this (three digits of a phone, say)
# is answered from the first SCAN_CAP in key order, not from all of them: the answer stays fast,
# and a clerk narrows such a query anyway.
SCAN_CAP = 2000
PHONE_LIKE = re.compile(r"^[0-9+\-() ]*[0-9][0-9+\-() ]*$")


def index_case(session: Session, case_id: int, number: str, applicant: dict[str, Any],
               parties: dict[str, str]) -> None:
    """The new case's rows in the index, in the caller's transaction."""
    search, keys, counters = index_rows(case_id, number, applicant, parties)
    session.execute(sa.insert(T_SEARCH).values(search))
    if keys:
        session.execute(sa.insert(T_SEARCH_KEYS), keys)
    if counters:
        session.execute(sa.insert(T_SEARCH_COUNTERS), counters)


def normalise(q: str) -> str:
    q = " ".join(q.split()).lower()
    if not q:
        raise InvalidInput("q", "检索词不能为空")
    if len(q) > MAX_QUERY:
        raise InvalidInput("q", f"检索词不能超过 {MAX_QUERY} 个字符")
    if any(not ch.isprintable() for ch in q):  # a NUL cannot even be sent to PostgreSQL as text
        raise InvalidInput("q", "检索词不能含控制字符")
    return q


def _readable(case_id: Any, counters: set[str] | None, finished: bool | None) -> list[Any]:
    """Conditions on a candidate's id: a counter the actor reads for takes part; open or finished."""
    out = []
    if counters is not None:
        out.append(sa.exists().where(T_SEARCH_COUNTERS.c.case_id == case_id,
                                     T_SEARCH_COUNTERS.c.counter_id.in_(sorted(counters))))
    if finished is not None:
        at = sa.select(T_CASE.c.finished_at).where(T_CASE.c.id == case_id).scalar_subquery()
        out.append(at.is_not(None) if finished else at.is_(None))
    return out


Readable = Callable[[Any], list[Any]]  # a candidate id column → its readability conditions


def _ids(session: Session, stmt: Any, params: dict[str, Any] | None = None) -> list[int]:
    return list(session.execute(stmt, params or {}).scalars())


def _ranges(session: Session, starts: set[str], cond: Readable, limit: int) -> list[int]:
    """Newest ``limit`` readable cases with a key starting with one of ``starts`` (each range read
    in key order up to SCAN_CAP readable keys)."""
    k = T_SEARCH_KEYS.c
    parts = [sa.select(k.case_id).where(k.key >= s, k.key < s + TOP, *cond(k.case_id)).limit(SCAN_CAP)
             for s in sorted(starts)]
    if len(parts) > 1:  # SQLite takes a LIMIT in a compound only inside a subquery of its own
        parts = [sa.select(p.subquery().c.case_id) for p in parts]
    sub = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery()
    return _ids(session, sa.select(sub.c.case_id).distinct().order_by(sub.c.case_id.desc()).limit(limit))


def _contains(session: Session, q: str, cond: Readable, limit: int) -> list[int]:
    """Newest ``limit`` readable cases whose name contains ``q`` (two characters or more)."""
    if len(q) == 2:  # below the trigram: the name's character pairs
        k = T_SEARCH_KEYS.c
        return _ids(session, sa.select(k.case_id).where(k.key == "b" + q, *cond(k.case_id))
                    .order_by(k.case_id.desc()).limit(limit))
    if session.get_bind().dialect.name == "sqlite":
        fts = sa.table("case_search_fts", sa.column("rowid", sa.Integer))
        match = sa.text("case_search_fts MATCH :p")
        return _ids(session, sa.select(fts.c.rowid).where(match, *cond(fts.c.rowid))
                    .order_by(fts.c.rowid.desc()).limit(limit), {"p": '"' + q.replace('"', '""') + '"'})
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    s = T_SEARCH.c
    # Ordered by an expression, not the key: the planner takes the trigram index and sorts the few
    # matches, instead of walking the whole table newest first hoping to meet them.
    return _ids(session, sa.select(s.case_id).where(s.name.like(pattern, escape="\\"), *cond(s.case_id))
                .order_by((s.case_id + 0).desc()).limit(limit))


def candidates(session: Session, actor: Actor, q: str, *, finished: bool | None = None,
               limit: int = 50) -> list[int]:
    """Ids of the readable cases matching ``q`` (normalised), best first: the physical query."""
    counters = readable_counters(session, actor)
    if counters is not None and not counters:
        return []
    # A phone as written (021-6321 0987, +86 138…) is looked up by its digits too.
    keyed = {q} | ({d} if PHONE_LIKE.match(q) and (d := digits(q)) else set())
    k = T_SEARCH_KEYS.c

    def cond(case_id: Any) -> list[Any]:
        return _readable(case_id, counters, finished)

    tiers_in_order: list[Callable[[], list[int]]] = [  # exact, last digits, prefix, contains
        lambda: _ids(session, sa.select(k.case_id).where(k.key.in_(sorted("f" + v for v in keyed)),
                                                         *cond(k.case_id)).order_by(k.case_id.desc()).limit(limit)),
        lambda: _ranges(session, {"r" + v[::-1] for v in keyed}, cond, limit),
        lambda: _ranges(session, {"f" + v for v in keyed}, cond, limit),
        lambda: _contains(session, q, cond, limit) if len(q) >= 2 else [],
    ]
    tiers: dict[int, int] = {}
    for tier, query in enumerate(tiers_in_order):
        if len(tiers) >= limit:  # a later tier ranks below every case found so far
            break
        for i in query():
            tiers.setdefault(i, tier)
    return sorted(tiers, key=lambda i: (tiers[i], -i))[:limit]


def search(session: Session, actor: Actor, q: str, *, finished: bool | None = None,
           limit: int = 50, page: bool = False) -> dict[str, Any]:
    """Cases matching ``q`` that ``actor`` may read, best match first, then newest (``page``: with
    what the queue page shows, engine.views.queue_entry)."""
    from engine.views import queue_entry  # noqa: PLC0415  (views imports the queue's helpers)

    ids = candidates(session, actor, normalise(q), finished=finished, limit=limit)
    if not ids:
        return {"items": [], "next_cursor": None}
    rows = {r["id"]: r for r in session.execute(
        sa.select(T_CASE, ItemVersion.name.label("item_name"))
        .join(ItemVersion, ItemVersion.id == T_CASE.c.item_version_id)
        .where(T_CASE.c.id.in_(ids))).mappings()}
    today = clock.today()
    cal = workdays.calendar(session) if page else None
    items = [queue_entry(session, rows[i], rows[i]["item_name"], actor.counter_id, today, cal, page=page)
             for i in ids if i in rows]
    return {"items": items, "next_cursor": None}


def check_filters(session: Session, *, state: str | None = None, item: str | None = None) -> None:
    """Unknown filter values are refused (422 naming the field), not answered with an empty list."""
    if state is None and item is None:
        return  # nothing to check: no catalog read on every search
    items = {it["code"] for it in catalog.list_items(session)}
    if item is not None and item not in items:
        raise InvalidInput("item", f"没有编码为 {item[:64]} 的事项")
    if state is not None:
        codes = [item] if item else sorted(items)
        known = {s.id for code in codes
                 for s in catalog.compiled(session, catalog.latest_version(session, code).id).definition.states}
        if state not in known:
            raise InvalidInput("state", f"事项中没有名为 {state[:64]} 的状态")
