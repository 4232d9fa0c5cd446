"""The SQLite writer queue: held for exactly a write transaction, released however it ends."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import migrate
from storage.db import make_engine, session_scope


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    e = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate.upgrade(e)
    yield e
    e.dispose()


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


def test_held_during_a_write_unit_and_released_after_commit(engine: sa.Engine) -> None:
    with session_scope(engine) as s:
        s.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
        assert _queue_taken(engine)
    assert not _queue_taken(engine)


def test_released_after_rollback_and_failed_statement(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as s:
        s.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
        s.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
    assert not _queue_taken(engine)
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        s.execute(sa.text("INSERT INTO regions (code, name) VALUES ('2', 'y')"))
        raise RuntimeError("the caller fails")
    assert not _queue_taken(engine)
    with session_scope(engine, readonly=True) as s:
        assert s.execute(sa.text("SELECT count(*) FROM regions")).scalar_one() == 0


def test_read_only_units_do_not_queue(engine: sa.Engine) -> None:
    with session_scope(engine) as writer:
        writer.execute(sa.text("INSERT INTO regions (code, name) VALUES ('1', 'x')"))
        with session_scope(engine, readonly=True) as reader:  # a WAL snapshot: no waiting
            assert reader.execute(sa.text("SELECT count(*) FROM regions")).scalar_one() == 0


def test_writers_on_threads_take_turns(engine: sa.Engine) -> None:
    with session_scope(engine) as s:
        s.execute(sa.text("INSERT INTO sequences (name, value) VALUES ('n', 0)"))
    inside, overlaps = [0], []

    def work() -> None:
        for _ in range(50):
            with session_scope(engine) as s:
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
    with session_scope(engine, readonly=True) as s:
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
