"""Fewer round trips without losing safety: pool liveness, the token read, the row lock, reused reads."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from engine import views
from engine.advance import advance, load_case
from engine.errors import StaleVersion, TriggerNotOpen
from storage.db import PING_AFTER_IDLE_S, session_scope
from storage.prepared import Prepared
from storage.tables import Region

SELECT_ONE = Prepared(sa.select(sa.literal_column("1").label("one")))
BACKEND_PID = Prepared(sa.select(sa.func.pg_backend_pid().label("pid")))
ON_POSTGRES = pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def _last_statement(engine: sa.Engine, session: Any) -> str:
    """What the unit's connection last sent, as the server saw it (asked on another connection)."""
    pid = session.driver().info.backend_pid  # checks the unit's connection out; sends nothing
    with engine.connect() as conn:
        last = str(conn.exec_driver_sql(f"SELECT query FROM pg_stat_activity WHERE pid = {pid}").scalar_one())
        conn.commit()  # so this connection too ends on a COMMIT
    return last


@ON_POSTGRES
def test_connection_is_pinged_only_after_sitting_idle(db: sa.Engine) -> None:
    with session_scope(db) as s:
        SELECT_ONE.first(s)
    # Straight after: taken as alive, nothing sent (pool_pre_ping would have sent BEGIN; SELECT 1).
    with session_scope(db) as s:
        assert _last_statement(db, s) == "COMMIT"
        SELECT_ONE.first(s)
    time.sleep(PING_AFTER_IDLE_S + 0.2)
    with session_scope(db) as s:
        assert _last_statement(db, s) == "ROLLBACK"  # the ping's own transaction, ended


@ON_POSTGRES
def test_idle_connection_dropped_by_the_server_is_replaced_unseen(db: sa.Engine) -> None:
    with session_scope(db) as s:
        first = BACKEND_PID.first(s)["pid"]  # type: ignore[index]
    outsider = sa.create_engine(db.url, poolclass=sa.pool.NullPool)  # not the pool's connection
    with outsider.begin() as other:  # a server restart, a firewall timeout: the backend goes away
        other.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
    outsider.dispose()
    time.sleep(PING_AFTER_IDLE_S + 0.2)
    with session_scope(db) as s:
        assert BACKEND_PID.first(s)["pid"] != first  # type: ignore[index]


@ON_POSTGRES
def test_token_read_in_autocommit_leaves_the_connection_transactional(db: sa.Engine) -> None:
    db.pool.dispose()  # one pooled connection from here on: the read's, then the unit's
    assert SELECT_ONE.first_alone(db, {}) == {"one": 1}
    # The same connection must be back in transactional mode: a failed unit rolls back.
    with pytest.raises(RuntimeError), session_scope(db) as s:
        s.add(Region(code="rt-1", name="往返"))
        s.flush()
        raise RuntimeError("the caller fails")
    with db.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM regions WHERE code = 'rt-1'").scalar_one() == 0


@ON_POSTGRES
def test_second_writer_waits_for_the_row_then_sees_the_new_version(demo: Demo) -> None:
    actor = demo.actor("陈静")
    number = demo.create("陈静", "GGCSWSXK", ALL_GGCS)["number"]
    outcomes: dict[str, BaseException | None] = {}

    def second(name: str, expected: int | None) -> None:
        try:
            with session_scope(demo.engine) as s:
                advance(s, number, "accept", actor, {}, expected_version=expected)
            outcomes[name] = None
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcomes[name] = exc

    with session_scope(demo.engine) as s:
        advance(s, number, "accept", actor, {}, expected_version=1)  # holds the row until commit
        racers = [threading.Thread(target=second, args=("if-match", 1)),
                  threading.Thread(target=second, args=("flow", None))]
        for t in racers:
            t.start()
        time.sleep(0.5)
        assert all(t.is_alive() for t in racers), "the others must wait for the row, not race past it"
    for t in racers:
        t.join(10)
    # After the wait each reads the committed case: a clean refusal, never a driver error.
    assert isinstance(outcomes["if-match"], StaleVersion), outcomes
    assert isinstance(outcomes["flow"], TriggerNotOpen), outcomes
    assert demo.count("history", trigger="accept") == 1


def test_answer_reuses_the_materials_the_transition_read(sqlite_demo: Demo) -> None:
    demo = sqlite_demo
    actor = demo.actor("陈静")
    partial = {k: v for k, v in ALL_GGCS.items() if k != "hygiene_report"}
    number = demo.create("陈静", "GGCSWSXK", partial)["number"]
    with session_scope(demo.engine) as s:
        case = advance(s, number, "accept", actor,
                       {"defer": [{"material": "hygiene_report", "promise": "五日内补交"}]}, expected_version=1)
        statements: list[str] = []
        driver = s.driver()  # type: ignore[attr-defined]
        driver.set_trace_callback(statements.append)
        view = views.case_view(s, case, actor)
        reused = [q for q in statements if "case_materials" in q]
        statements.clear()
        fresh = views.case_view(s, load_case(s, number), actor)  # another read of the case: its own query
        loaded = [q for q in statements if "case_materials" in q]
        driver.set_trace_callback(None)
    assert reused == [] and len(loaded) == 1
    assert view["materials"] == fresh["materials"]
    report = next(m for m in view["materials"] if m["id"] == "hygiene_report")
    assert report["status"] == "deferred" and report["promise"] == "五日内补交"
