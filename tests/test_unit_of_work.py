"""One unit of work, two ways in: prepared statements and the ORM share one transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.deps import SessionDep
from api.routing import UnitRoute
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


async def _probe(request: Request) -> AsyncIterator[None]:
    """Exits after the route returned and before the unit's own exit (dependencies end in reverse):
    looks from a read-only connection whether the route's write is committed yet."""
    yield
    db = request.app.state.engine
    request.app.state.seen["committed_before_unit_exit"] = _count(db.execution_options(readonly=True))


Probe = Annotated[None, Depends(_probe, scope="function")]


def _probe_app(db: sa.Engine, route_class: type[APIRoute], seen: dict[str, int]) -> FastAPI:
    router = APIRouter(route_class=route_class)

    @router.post("/regions/{code}")
    def add_region(code: str, session: SessionDep, _: Probe) -> Any:
        INSERT_REGION.execute(session, {"code": code, "name": "探针"})
        return {"code": code}

    # Commit on return is keyed on the dependency, not on the parameter's name.
    @router.post("/named-otherwise/{code}")
    def add_region_named_otherwise(code: str, unit: SessionDep, _: Probe) -> Any:
        INSERT_REGION.execute(unit, {"code": code, "name": "探针"})
        return {"code": code}

    app = FastAPI()
    app.state.engine, app.state.seen = db, seen
    app.include_router(router)
    return app


# On SQLite the writer lock is held until commit: committing a thread hop later, in the
# dependency's exit, kept every other writer waiting across that hop. The plain route is the
# control: what the probe sees without UnitRoute.
@pytest.mark.parametrize(("route_class", "committed"), [(UnitRoute, 1), (APIRoute, 0)],
                         ids=["unit_route_commits_as_it_returns", "plain_route_commits_in_the_exit"])
@pytest.mark.parametrize("path", ["/regions/1", "/named-otherwise/1"])
def test_when_a_route_commits(db: sa.Engine, route_class: type[APIRoute], committed: int, path: str) -> None:
    seen: dict[str, int] = {}
    with TestClient(_probe_app(db, route_class, seen)) as client:
        assert client.post(path).status_code == 200
    assert seen["committed_before_unit_exit"] == committed
    assert _count(db) == 1


def test_prepared_literals_keep_their_value(db: sa.Engine) -> None:
    # sa.literal() compiles to an anonymous bind: it must carry its value, not NULL.
    labelled = Prepared(sa.select(sa.literal(7).label("seven"), sa.literal("通办").label("name")))
    with session_scope(db, readonly=True) as s:
        assert labelled.first(s) == {"seven": 7, "name": "通办"}


def test_sqlalchemy_is_pinned_below_its_next_minor() -> None:
    """storage.prepared leans on SQLAlchemy internals: a new minor must be a deliberate upgrade."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    from core.settings import ROOT

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    req = next(Requirement(d.split("#")[0]) for d in deps if d.startswith("sqlalchemy"))
    installed = version("sqlalchemy")
    major, minor = map(int, installed.split(".")[:2])
    assert installed in req.specifier
    assert f"{major}.{minor + 1}.0" not in req.specifier and f"{major}.{minor}.99" in req.specifier
