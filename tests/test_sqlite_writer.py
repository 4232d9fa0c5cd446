"""The SQLite writer queue: held for exactly a write transaction, released however it ends."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, ALLIANCE, CATALOG, answers_for

from api.app import create_app
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope


def _queue_taken(engine: sa.Engine) -> bool:
    """Whether some writer holds the cross-process lock (tried from a file description of our own)."""
    fd = os.open(str(engine.url.database) + ".writer", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_held_during_a_write_unit_and_released_after_commit(sqlite_db: sa.Engine) -> None:
    with session_scope(sqlite_db) as s:
        s.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
        assert _queue_taken(sqlite_db)
    assert not _queue_taken(sqlite_db)


def test_released_after_rollback_and_failed_statement(sqlite_db: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), session_scope(sqlite_db) as s:
        s.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
        s.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
    assert not _queue_taken(sqlite_db)
    with pytest.raises(RuntimeError), session_scope(sqlite_db) as s:
        s.execute(sa.text("INSERT INTO regions (code, name) VALUES ('2', 'y')"))
        raise RuntimeError("the caller fails")
    assert not _queue_taken(sqlite_db)
    with session_scope(sqlite_db, readonly=True) as s:
        assert s.execute(sa.text("SELECT count(*) FROM regions")).scalar_one() == 0


def test_read_only_units_do_not_queue(sqlite_db: sa.Engine) -> None:
    with session_scope(sqlite_db) as writer:
        writer.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
        with session_scope(sqlite_db, readonly=True) as reader:  # a WAL snapshot: no waiting
            assert reader.execute(sa.text("SELECT count(*) FROM regions")).scalar_one() == 0


def test_writers_on_threads_take_turns(sqlite_db: sa.Engine) -> None:
    with session_scope(sqlite_db) as s:
        s.execute(sa.text("INSERT INTO sequences (name, value) VALUES ('n', 0)"))
    inside, overlaps = [0], []

    def work() -> None:
        for _ in range(50):
            with session_scope(sqlite_db) as s:
                s.execute(sa.text("UPDATE sequences SET value = value + 1 WHERE name = 'n'"))
                inside[0] += 1
                overlaps.append(inside[0])
                s.execute(sa.text("SELECT value FROM sequences"))
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(overlaps) == 1
    with session_scope(sqlite_db, readonly=True) as s:
        assert s.execute(sa.text("SELECT value FROM sequences WHERE name = 'n'")).scalar_one() == 200


def test_a_writer_nested_in_a_writer_fails_instead_of_waiting_for_itself(tmp_path: Path) -> None:
    e = make_engine(f"sqlite:///{tmp_path / 'n.db'}")
    migrate.upgrade(e)
    with session_scope(e) as outer:
        outer.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
        outer.connection().connection.driver_connection.writer_queue.timeout = 0.2
        with pytest.raises(sqlite3.OperationalError, match="database is locked"), session_scope(e) as inner:
            inner.execute(sa.text("INSERT INTO regions (code, name) VALUES ('2', 'y')"))
    assert not _queue_taken(e)
    e.dispose()
    assert sqlite3.connect(tmp_path / "n.db").execute("SELECT count(*) FROM regions").fetchone() == (1,)


def test_more_writers_than_threads_all_finish(sqlite_db: sa.Engine, tmp_path: Path,
                                              serve_app: Callable[[Any], str]) -> None:
    """Sixty intakes at once while the queue is taken: more than the API's 40 pool threads.

    Each request must wait for the queue only where it can also finish (in its route), never in
    a dependency: otherwise the holder waits for a thread that the waiters hold.
    """
    with session_scope(sqlite_db) as s:
        tokens = {t["name"]: t["token"] for t in seed(s, CATALOG, ALLIANCE, tmp_path / "t.json", 30)}
    base = serve_app(create_app(sqlite_db))
    body = {"item_code": "GGCSWSXK", "applicant": {"name": "并发申请人", "kind": "company"}, "materials": ALL_GGCS,
            "situation": answers_for("GGCSWSXK", ALL_GGCS)}

    async def intakes() -> list[int]:
        async with httpx.AsyncClient(base_url=base, timeout=25,
                                     headers={"Authorization": f"Bearer {tokens['陈静']}"}) as client:
            sends = [asyncio.create_task(client.post("/api/v1/cases", json=body)) for _ in range(60)]
            await asyncio.sleep(1.0)  # all of them arrive while the queue is taken
            holder.commit()
            return [r.status_code for r in await asyncio.gather(*sends)]

    with sqlite_db.connect() as conn:
        holder = conn.connection.driver_connection
        holder.begin_write()
        try:
            statuses = asyncio.run(intakes())
        finally:
            holder.rollback()
    assert statuses == [201] * 60
    with session_scope(sqlite_db, readonly=True) as s:
        assert s.execute(sa.text("SELECT count(*) FROM cases")).scalar_one() == 60


def test_checkpoints_happen_off_the_commit_path(sqlite_db: sa.Engine) -> None:
    """Commits do not checkpoint (SQLite's automatic checkpoint is off); the background thread does."""
    with sqlite_db.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        checkpointer = raw.checkpointer
    checkpointer.restart_frames = 500
    wal = Path(str(sqlite_db.url.database) + "-wal")
    for i in range(1000):
        with session_scope(sqlite_db) as s:
            s.execute(sa.text("INSERT INTO regions (code, name) VALUES (:c, 'x')"), {"c": str(i)})
    deadline = time.monotonic() + 10
    while (checkpointer.checkpoints < 1 or checkpointer.restarts < 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Woken every 100 commits; wakes that come while it is still checkpointing merge into one (seen
    # on a loaded machine: 3 for 1,000 commits), so only the bounds are certain.
    assert 1 <= checkpointer.checkpoints <= 10
    # Under steady writes a PASSIVE checkpoint never catches up when a writer begins, so the WAL
    # would only grow (2,000+ frames of 4 KiB here); the queued RESTARTs rewind it.
    assert checkpointer.restarts >= 1
    assert wal.stat().st_size < 1000 * 4096


def test_engines_on_one_file_share_the_queue(tmp_path: Path) -> None:
    """Two engines on one file in one process: a writer nested across them fails, never hangs."""
    first = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    migrate.upgrade(first)
    second = make_engine(f"sqlite:///{tmp_path / '.' / 's.db'}")
    with first.connect() as a, second.connect() as b:
        queue = a.connection.driver_connection.writer_queue
        assert b.connection.driver_connection.writer_queue is queue
    queue.timeout = 0.2
    with session_scope(first) as outer:
        outer.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
        with pytest.raises(sqlite3.OperationalError, match="database is locked"), session_scope(second) as inner:
            inner.execute(sa.text("INSERT INTO regions (code, name) VALUES ('2', 'y')"))
    first.dispose()
    second.dispose()


def test_the_event_loop_never_waits_for_the_pool(sqlite_db: sa.Engine, tmp_path: Path,
                                                 serve_app: Callable[[Any], str]) -> None:
    """Tokens are read on the event loop; with every pooled connection busy, the loop still answers."""
    with session_scope(sqlite_db) as s:
        tokens = {t["name"]: t["token"] for t in seed(s, CATALOG, ALLIANCE, tmp_path / "t.json", 30)}
    base = serve_app(create_app(sqlite_db))
    pool = sqlite_db.pool
    held = [sqlite_db.raw_connection() for _ in range(pool.size() + pool._max_overflow)]  # noqa: SLF001
    try:
        with httpx.Client(base_url=base, timeout=5) as client:
            refused = client.get("/api/v1/cases", headers={"Authorization": "Bearer tb_not-a-token"})
            assert refused.status_code == 401  # answered by the loop while the pool is empty

            def release() -> None:
                time.sleep(0.5)
                for c in held:
                    c.close()

            threading.Thread(target=release).start()
            queue = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {tokens['陈静']}"})
            assert queue.status_code == 200  # its route waited on a pool thread, not on the loop
    finally:
        for c in held:
            c.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_leaves_no_lock_file(url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    engine.dispose()
    assert list(tmp_path.iterdir()) == []
