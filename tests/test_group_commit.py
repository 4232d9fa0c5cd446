"""Group commit (storage.group_commit): concurrent write units in one SQLite transaction, a
savepoint each. One unit's failure is its own; a failed commit fails the whole group and writes
nothing; history is numbered in the order units ran; a lone request commits alone, at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo
from sqlmodel import Session

from core.settings import get_settings
from engine import events, intake
from engine.advance import advance
from engine.errors import StaleVersion
from storage.db import session_scope
from storage.group_commit import GroupCommitFailed, GroupCommitter, committer_for, committer_of
from storage.sqlite_writer import QueuedConnection
from storage.unit import UnitSession

Unit = Callable[[Session], Any]


def _until(check: Callable[[], bool], what: str) -> None:
    """Wait for another thread to get somewhere (a synchronisation, not a timed assertion)."""
    deadline = time.monotonic() + 30
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.001)


def run_group(committer: GroupCommitter, units: list[Unit],
              callers: list[int] | None = None, max_seconds: float = 60.0) -> list[tuple[str, Any]]:
    """Run ``units`` as one group, in this order: the first leads and waits inside its unit
    until every other one has queued behind it. Returns each caller's own outcome (and in
    ``callers`` each caller's thread). ``max_seconds``: the group's time budget (long enough by
    default that a slow machine still writes them as one group)."""
    budget, committer.max_seconds = committer.max_seconds, max_seconds
    try:
        return _run_group(committer, units, callers)
    finally:
        committer.max_seconds = budget


def _run_group(committer: GroupCommitter, units: list[Unit], callers: list[int] | None) -> list[tuple[str, Any]]:
    outcomes: list[tuple[str, Any]] = [("none", None)] * len(units)
    idents = callers if callers is not None else []
    idents[:] = [0] * len(units)
    queued = len(committer._queue)

    def first(session: Session) -> Any:
        _until(lambda: len(committer._queue) == queued + len(units) - 1, "the others to queue")
        return units[0](session)

    def call(i: int, fn: Unit) -> None:
        idents[i] = threading.get_ident()
        try:
            outcomes[i] = ("ok", committer.run(fn))
        except Exception as exc:
            outcomes[i] = ("error", exc)

    threads = [threading.Thread(target=call, args=(0, first))]
    threads[0].start()
    _until(lambda: committer._leading, "the first unit to lead")
    for i, fn in enumerate(units[1:], start=1):
        threads.append(threading.Thread(target=call, args=(i, fn)))
        threads[-1].start()
        _until(lambda i=i: len(committer._queue) == queued + i, "a unit to queue in its turn")
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def fire(number: str, trigger: str, actor: Any, version: int) -> Unit:
    def unit(session: Session) -> int:
        return int(advance(session, number, trigger, actor, {}, expected_version=version)["version"])
    return unit


def material(number: str, actor: Any, version: int) -> Unit:
    def unit(session: Session) -> int:
        return int(intake.set_material(session, number, actor, "business_licence", "received", version)["version"])
    return unit


def versions(demo: Demo, numbers: list[str]) -> dict[str, int]:
    with demo.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT number, version FROM cases")).all()
    return {n: v for n, v in rows if n in numbers}


def history_of(demo: Demo, number: str) -> list[tuple[int, int]]:
    """(history id, seq) of a case's events, in id order."""
    with demo.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(  # type: ignore[misc]
            "SELECT h.id, h.seq FROM history h JOIN cases c ON c.id = h.case_id "
            "WHERE c.number = :n ORDER BY h.id"), {"n": number}).all()]


@pytest.fixture
def cases(sqlite_demo: Demo) -> list[str]:
    return [sqlite_demo.create("王芳", "GGCSWSXK", ALL_GGCS)["number"] for _ in range(4)]


def test_a_failing_unit_in_a_group_fails_alone(sqlite_demo: Demo, cases: list[str]) -> None:
    demo, actor = sqlite_demo, sqlite_demo.actor("王芳")
    committer = committer_of(demo.engine)
    assert committer is not None
    outbox = demo.count("outbox")

    def writes_then_breaks(session: Session) -> None:
        advance(session, cases[3], "accept", actor, {}, expected_version=1)  # written, then …
        raise RuntimeError("单元出错")

    groups = committer.groups
    got = run_group(committer, [fire(cases[0], "accept", actor, 1), writes_then_breaks,
                                fire(cases[1], "accept", actor, 7), fire(cases[2], "accept", actor, 1)])
    assert committer.groups == groups + 1 and committer.last_group_size == 4  # one transaction
    assert got[0] == ("ok", 2) and got[3] == ("ok", 2)
    assert got[1][0] == "error" and str(got[1][1]) == "单元出错"
    assert got[2][0] == "error" and isinstance(got[2][1], StaleVersion)
    assert versions(demo, cases) == {cases[0]: 2, cases[1]: 1, cases[2]: 2, cases[3]: 1}
    assert [seq for _, seq in history_of(demo, cases[3])] == [1]  # its advance was rolled back
    assert demo.count("outbox") > outbox  # the good units' jobs are there


def test_a_failed_commit_fails_every_unit_of_the_group_and_writes_nothing(
        sqlite_demo: Demo, cases: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    demo, actor = sqlite_demo, sqlite_demo.actor("王芳")
    committer = committer_of(demo.engine)
    assert committer is not None
    before = (demo.count("history"), demo.count("outbox"), demo.count("case_holders"))
    armed = threading.Event()
    real_commit = QueuedConnection.commit

    def commit(self: QueuedConnection) -> None:
        if armed.is_set() and self.in_transaction:
            armed.clear()
            raise sqlite3.OperationalError("disk I/O error")
        real_commit(self)

    monkeypatch.setattr(QueuedConnection, "commit", commit)

    def arms_then_fires(session: Session) -> int:
        armed.set()  # the next commit is this group's
        return fire(cases[0], "accept", actor, 1)(session)

    got = run_group(committer, [arms_then_fires, fire(cases[1], "accept", actor, 1),
                                fire(cases[2], "accept", actor, 9), fire(cases[3], "accept", actor, 1)])
    assert all(kind == "error" and isinstance(exc, GroupCommitFailed) for kind, exc in got), got
    assert "disk I/O error" in str(got[0][1])
    assert versions(demo, cases) == dict.fromkeys(cases, 1)
    assert (demo.count("history"), demo.count("outbox"), demo.count("case_holders")) == before
    # The writer queue was given back: the next request goes through, alone.
    assert committer.run(fire(cases[0], "accept", actor, 1)) == 2
    assert committer.last_group_size == 1


def test_a_failed_commit_answers_503_over_http(sqlite_demo: Demo, cases: list[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    demo = sqlite_demo
    real_commit = QueuedConnection.commit
    fail = {"armed": False}

    def commit(self: QueuedConnection) -> None:
        if fail["armed"] and self.in_transaction:
            fail["armed"] = False
            raise sqlite3.OperationalError("disk I/O error")
        real_commit(self)

    monkeypatch.setattr(QueuedConnection, "commit", commit)
    history = demo.count("history")
    fail["armed"] = True
    r = demo.client.post(f"/api/v1/cases/{cases[0]}/triggers/accept",
                         headers=demo.h("王芳", **{"If-Match": '"1"'}))
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "未生效" in r.json()["detail"] and r.headers["retry-after"] == "1"
    assert demo.count("history") == history and versions(demo, cases)[cases[0]] == 1
    assert demo.fire("王芳", cases[0], "accept", 1)["version"] == 2  # retried, it goes through


def test_history_is_numbered_in_the_order_units_ran(sqlite_demo: Demo, cases: list[str]) -> None:
    """Two units on one case in one group: the second sees the first's write (its expected version
    is the one the first made); ids follow the run order, seqs stay consecutive per case, and the
    feed's positions follow the ids."""
    demo, actor = sqlite_demo, sqlite_demo.actor("王芳")
    committer = committer_of(demo.engine)
    assert committer is not None
    got = run_group(committer, [material(cases[0], actor, 1), fire(cases[1], "accept", actor, 1),
                                fire(cases[0], "accept", actor, 2), fire(cases[2], "accept", actor, 1)])
    assert [kind for kind, _ in got] == ["ok"] * 4, got
    assert committer.last_group_size == 4
    first, second, third = (history_of(demo, n)[1:] for n in cases[:3])
    assert [seq for _, seq in first] == [2, 3]
    order = [first[0][0], second[0][0], first[1][0], third[0][0]]  # the units' run order
    assert order == sorted(order)
    events.catch_up(demo.engine)
    with demo.engine.connect() as conn:
        positions = dict(conn.execute(sa.text("SELECT history_id, position FROM feed_events")).all())
    assert [positions[i] for i in order] == sorted(positions[i] for i in order)


def test_after_commit_runs_on_the_callers_thread_once_the_group_committed(
        sqlite_demo: Demo, cases: list[str]) -> None:
    demo, actor = sqlite_demo, sqlite_demo.actor("王芳")
    committer = committer_of(demo.engine)
    assert committer is not None
    seen: dict[str, tuple[str, int, int]] = {}  # unit → (event, thread, version then read elsewhere)

    def watched(name: str, number: str, then: Unit) -> Unit:
        def unit(session: Session) -> Any:
            session.execute(sa.text("SELECT 1"))  # the ORM's transaction, whose end fires events
            for event in ("after_commit", "after_soft_rollback"):
                sa.event.listen(session, event, lambda s, *_, e=event: seen.__setitem__(
                    name, (e, threading.get_ident(), versions(demo, [number])[number])))
            return then(session)
        return unit

    def stale(session: Session) -> None:
        raise StaleVersion("过期")

    callers: list[int] = []
    got = run_group(committer, [watched("lead", cases[0], fire(cases[0], "accept", actor, 1)),
                                watched("good", cases[1], fire(cases[1], "accept", actor, 1)),
                                watched("bad", cases[2], stale)], callers)
    assert [kind for kind, _ in got] == ["ok", "ok", "error"]
    assert committer.last_group_size == 3
    # Once its group committed (another connection reads the new version), on its own thread.
    assert seen["lead"] == ("after_commit", callers[0], 2)
    assert seen["good"] == ("after_commit", callers[1], 2)
    assert seen["bad"] == ("after_soft_rollback", callers[2], 1)


def test_a_group_takes_no_more_units_once_its_time_budget_is_spent(sqlite_demo: Demo, cases: list[str]) -> None:
    """Units queued behind a group that has written for its budget wait for the next group
    (led by the first of them) instead of lengthening this one: each unit's answer waits for its
    group's commit, and the other processes' groups for the writer lock."""
    demo, actor = sqlite_demo, sqlite_demo.actor("王芳")
    committer = committer_of(demo.engine)
    assert committer is not None
    groups, units = committer.groups, committer.units
    got = run_group(committer, [fire(n, "accept", actor, 1) for n in cases[:3]], max_seconds=0.0)
    assert [kind for kind, _ in got] == ["ok"] * 3, got
    assert (committer.groups - groups, committer.units - units) == (3, 3)
    assert versions(demo, cases[:3]) == dict.fromkeys(cases[:3], 2)


def test_a_lone_request_commits_at_once_in_a_group_of_one(sqlite_demo: Demo, cases: list[str]) -> None:
    demo = sqlite_demo
    committer = committer_of(demo.engine)
    assert committer is not None
    groups, units = committer.groups, committer.units
    assert demo.fire("王芳", cases[0], "accept", 1)["version"] == 2
    assert (committer.groups, committer.units, committer.last_group_size) == (groups + 1, units + 1, 1)


def test_the_setting_turns_it_off(sqlite_demo: Demo, cases: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    demo = sqlite_demo
    committer = committer_of(demo.engine)
    assert committer is not None
    monkeypatch.setattr(get_settings(), "group_commit", False)
    groups = committer.groups
    assert demo.fire("王芳", cases[0], "accept", 1)["version"] == 2
    assert committer.groups == groups  # committed on its own, as before group commit
    assert committer_for(UnitSession(demo.engine)) is None


def test_where_units_commit_one_by_one(sqlite_demo: Demo) -> None:
    """PostgreSQL (no gain measured), in-memory SQLite and read-only units have no group commit."""
    assert committer_of(sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")) is None
    assert committer_of(sa.create_engine("sqlite://")) is None
    assert committer_for(UnitSession(sqlite_demo.engine.execution_options(readonly=True))) is None
    assert committer_for(UnitSession(sqlite_demo.engine)) is committer_of(sqlite_demo.engine)


def test_a_unit_may_not_commit_midway_and_its_session_ends_with_it(sqlite_demo: Demo) -> None:
    committer = committer_of(sqlite_demo.engine)
    assert committer is not None
    kept: list[Session] = []

    def commits(session: Session) -> None:
        kept.append(session)
        session.commit()

    with pytest.raises(RuntimeError, match="不能自行提交"):
        committer.run(commits)
    with pytest.raises(Exception, match="单元已结束"):
        kept[0].execute(sa.text("SELECT 1"))  # never the next group's connection
    with session_scope(sqlite_demo.engine) as s:  # and the writer queue was given back
        s.execute(sa.text("UPDATE feed_state SET low_water = low_water"))


def test_a_unit_that_rolls_back_midway_keeps_only_what_it_wrote_after(sqlite_demo: Demo, cases: list[str]) -> None:
    """A route that rolls back a refusal and then writes something else: the rollback reaches its
    own savepoint only, never the group's transaction."""
    demo, actor = sqlite_demo, sqlite_demo.actor("王芳")
    committer = committer_of(demo.engine)
    assert committer is not None

    def second(session: Session) -> int:
        advance(session, cases[1], "accept", actor, {}, expected_version=1)
        session.rollback()
        return fire(cases[2], "accept", actor, 1)(session)

    got = run_group(committer, [fire(cases[0], "accept", actor, 1), second])
    assert got == [("ok", 2), ("ok", 2)] and committer.last_group_size == 2
    assert versions(demo, cases[:3]) == {cases[0]: 2, cases[1]: 1, cases[2]: 2}
