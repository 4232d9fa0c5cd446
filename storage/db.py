"""The one database engine and session factory; SQLite (WAL) embedded, PostgreSQL by URL."""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session

from core.settings import get_settings
from storage.sqlite_writer import Checkpointer, QueuedConnection, WriterQueue
from storage.unit import UnitSession

BUSY_TIMEOUT_S = 30.0
PING_AFTER_IDLE_S = 1.0


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits, which json writes as they are
        return json.dumps(value, ensure_ascii=False)


# JSON columns (case parties, assignees, history data, job payloads) are encoded on every
# transition; orjson does it several times faster than the json module.
JSON_CODEC: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": orjson.loads}


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        # ``sqlite://`` and ``sqlite:///:memory:`` are in memory: no file, so no writer-lock file
        # beside it (splitting the URL by hand once created ``sqlite:.writer`` in the cwd).
        path = sa.engine.make_url(url).database or ""
        queue = checkpointer = None
        if path and path != ":memory:" and not path.startswith("file::memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            queue = WriterQueue.for_file(path, timeout=BUSY_TIMEOUT_S)
            checkpointer = Checkpointer(path, queue)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S,
                               "factory": QueuedConnection},
            pool_size=8, **JSON_CODEC,
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            # Let us emit BEGIN ourselves: pysqlite's implicit BEGIN is deferred, and a deferred
            # transaction that later writes can fail with SQLITE_BUSY instead of waiting.
            dbapi_conn.isolation_level = None
            dbapi_conn.writer_queue, dbapi_conn.checkpointer = queue, checkpointer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            if checkpointer is not None:
                cur.execute("PRAGMA wal_autocheckpoint=0")  # storage.sqlite_writer.Checkpointer does it
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # Writers queue for the lock up front (storage.sqlite_writer); read-only units (WAL
            # snapshots) never block anyone. A unit's connection joins the unit's transaction.
            options = conn.get_execution_options()
            if (unit := options.get("unit")) is not None:
                unit.begin_driver()
            else:
                conn.connection.driver_connection.begin(options.get("readonly", False))

        return engine
    engine = sa.create_engine(url, pool_size=10, max_overflow=20, **JSON_CODEC)
    _ping_when_idle(engine, PING_AFTER_IDLE_S)
    return engine


def _ping_when_idle(engine: sa.Engine, idle_s: float) -> None:
    """Check a pooled PostgreSQL connection before use only if it sat idle for ``idle_s``.

    ``pool_pre_ping`` pings on every checkout: with psycopg that is a BEGIN and a SELECT 1, two
    of the dozen round trips a clerk's request made. A connection given back moments ago was
    alive then; one that sat idle (where a server restart or a dropped link hides) is pinged,
    and if dead, replaced before anyone uses it. A connection the driver already knows is
    closed is replaced at once.
    """

    @sa.event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None:
            record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if dbapi_conn.closed:
            raise sa.exc.DisconnectionError("connection closed")
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_conn.rollback()
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc


_url_keys: dict[int, tuple[sa.URL, str]] = {}


def database_key(session: Session) -> str:
    """Which database a session talks to, for process-wide caches of immutable rows.

    Rendering a URL (what hashing one does) costs more than a whole cached lookup, so the text is
    kept per URL object; the entry holds the object, so its id cannot be reused by another.
    """
    url = bound_engine(session).url
    hit = _url_keys.get(id(url))
    if hit is None or hit[0] is not url:
        hit = _url_keys[id(url)] = (url, url.render_as_string(hide_password=True))
    return hit[1]


def bound_engine(session: Session) -> sa.Engine:
    """The engine behind a session (with its execution options), without opening a connection."""
    return session.engine if isinstance(session, UnitSession) else session.get_bind()  # type: ignore[return-value]


@dataclass(frozen=True)
class LoopReader:
    """A SQLite connection of an engine's own, outside its pool, for short reads on an event loop.

    The loop must never wait for the pool: requests waiting for SQLite's writer can hold every
    pooled connection, and their commits are scheduled by that same loop. Reads leave no
    transaction open; ``lock`` keeps two loops (tests run several) from interleaving on it.
    """

    connection: Any
    lock: threading.Lock


_loop_readers: weakref.WeakKeyDictionary[sa.Engine, LoopReader] = weakref.WeakKeyDictionary()
_loop_readers_lock = threading.Lock()


def loop_reader(engine: sa.Engine) -> LoopReader:
    with _loop_readers_lock:
        reader = _loop_readers.get(engine)
        if reader is None:
            pooled = engine.raw_connection()  # made by the pool, so its connect pragmas apply
            reader = _loop_readers[engine] = LoopReader(pooled.driver_connection, threading.Lock())
            pooled.detach()  # … and then no longer the pool's
        return reader


@lru_cache
def get_engine(url: str | None = None) -> sa.Engine:
    return make_engine(url or get_settings().database_url)


@contextmanager
def session_scope(engine: sa.Engine | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """One unit of work (storage.unit): commits on success, rolls back on any error.

    ``readonly`` units do not take SQLite's write lock (PostgreSQL ignores the option).
    """
    bind = engine or get_engine()
    if readonly:
        bind = bind.execution_options(readonly=True)
    with UnitSession(bind) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(session: Session) -> None:
    """One round trip to the database (the health probe)."""
    session.execute(sa.text("SELECT 1"))
