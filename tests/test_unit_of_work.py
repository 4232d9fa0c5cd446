"""One unit of work, two ways in: prepared statements and the ORM share one transaction."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from storage.db import session_scope
from storage.prepared import Prepared
from storage.tables import Region

T_REGION = Region.__table__
INSERT_REGION = Prepared(sa.insert(T_REGION))
COUNT = "SELECT count(*) FROM regions"


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(COUNT)).scalar_one())


def test_both_paths_commit_together(db: sa.Engine) -> None:
    with session_scope(db) as s:
        INSERT_REGION.execute(s, {"code": "1", "name": "prepared"})
        s.add(Region(code="2", name="orm"))
        s.flush()
        # Each path sees the other's write: one connection, one transaction.
        assert s.execute(sa.text(COUNT)).scalar_one() == 2
        assert len(Prepared(sa.select(T_REGION)).all(s)) == 2
    assert _count(db) == 2


def test_both_paths_roll_back_together(db: sa.Engine) -> None:
    try:
        with session_scope(db) as s:
            s.add(Region(code="2", name="orm"))
            s.flush()
            INSERT_REGION.execute(s, {"code": "1", "name": "prepared"})
            raise RuntimeError("the caller fails")
    except RuntimeError:
        pass
    assert _count(db) == 0


def test_prepared_only_unit_builds_no_orm_connection(db: sa.Engine) -> None:
    with session_scope(db) as s:
        INSERT_REGION.execute(s, {"code": "1", "name": "prepared"})
        assert s._connection is None  # noqa: SLF001 - the point of the unit
        assert s.in_transaction()
    assert _count(db) == 1


def test_commit_midway_then_carry_on(db: sa.Engine) -> None:
    with session_scope(db) as s:
        INSERT_REGION.execute(s, {"code": "1", "name": "first"})
        s.commit()
        assert _count(db) == 1  # visible to others: really committed
        s.add(Region(code="2", name="second"))
        s.flush()
        INSERT_REGION.execute(s, {"code": "3", "name": "third"})
    assert _count(db) == 3


def test_after_commit_runs_once_the_data_is_durable(db: sa.Engine) -> None:
    seen: list[int] = []
    with session_scope(db) as s:
        s.add(Region(code="2", name="orm"))
        sa.event.listen(s, "after_commit", lambda _: seen.append(_count(db)), once=True)
        INSERT_REGION.execute(s, {"code": "1", "name": "prepared"})
    assert seen == [2]


def test_read_only_unit_reads_through_both_paths(db: sa.Engine) -> None:
    with session_scope(db) as s:
        INSERT_REGION.execute(s, {"code": "1", "name": "x"})
    with session_scope(db) as writer:  # a writer in progress does not block read-only units
        INSERT_REGION.execute(writer, {"code": "2", "name": "y"})
        with session_scope(db, readonly=True) as reader:
            assert reader.execute(sa.text(COUNT)).scalar_one() == 1
            assert len(Prepared(sa.select(T_REGION)).all(reader)) == 1


def test_prepared_statements_join_a_plain_session_too(db: sa.Engine) -> None:
    with Session(db) as s:
        INSERT_REGION.execute(s, {"code": "1", "name": "prepared"})
        s.add(Region(code="2", name="orm"))
        s.rollback()
    assert _count(db) == 0
    with Session(db) as s:
        INSERT_REGION.execute(s, {"code": "1", "name": "prepared"})
        s.commit()
    assert _count(db) == 1
