"""Group commit: write units of concurrent requests run back to back in one transaction.

On SQLite every write transaction queues for the one writer lock (``storage.sqlite_writer``), and
the lock was held far longer than the work under it: each hand-over wakes a thread, and each
transaction pays its own BEGIN IMMEDIATE, COMMIT and WAL frames of the same hot pages. Here the
requests of one process that arrive while a transaction is being written join it instead.

How: the first request that finds nobody writing becomes the *leader*. It takes the writer lock,
begins the transaction and runs its own unit under a SAVEPOINT; then, while other units are
queued (their request threads wait), it runs each of them the same way, and commits as soon as
the queue is empty — a lone request never waits for a batch to fill (group size 1, the same path
as before). A unit that raises is rolled back to its savepoint: only its request fails, with its
own error. Nobody is answered before the COMMIT: if the COMMIT itself fails (or the transaction
is lost under a unit, as SQLite does on a full disk), every request of that group fails with
``GroupCommitFailed`` and nothing of the group was written. After the commit the leader hands
leadership to the next queued request and answers its own.

Effects outside the database wait for the commit as before: outbox rows are data of the
transaction; each unit's session runs its ``after_commit`` listeners (metrics, thumbnails) on its
own request thread once the group committed, and its ``after_soft_rollback`` ones otherwise.

A unit runs on the leader's thread, in its own request's ``contextvars`` context. It must not
commit mid-unit, nor open a write unit of its own (the leader holds the writer lock): routes opt
in (``api.routing.grouped``) only where their work is the request's own transaction alone.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import PoolProxiedConnection
from sqlmodel import Session

from core.settings import get_settings
from storage.unit import UnitSession

log = logging.getLogger("tongban.storage")

SAVEPOINT = "tongban_unit"
MAX_UNITS = 64  # per group: the leader's own answer waits for the whole group
# Nor does a group take more units once it has written this long: every unit of it waits for the
# commit, and the other workers' groups wait for the writer lock. Without it, groups under a
# burst grew to tens of units and the half-load p99 rose from 28 to 131 ms (bench/README.md).
MAX_GROUP_SECONDS = 0.004


class GroupCommitFailed(Exception):
    """The transaction a unit ran in did not commit: nothing of any unit of its group was written."""


class _Detached(Exception):
    pass


class _UnitConnection:
    """What a unit's ORM sees as its pooled connection: the group's, except that the ORM's own
    commit and rollback (bookkeeping of the unit's session) never reach the group's transaction,
    and closing it does not give the group's connection back to the pool."""

    def __init__(self, pooled: PoolProxiedConnection) -> None:
        self._pooled: PoolProxiedConnection | None = pooled

    @property
    def is_valid(self) -> bool:
        return self._pooled is None or self._pooled.is_valid

    def __getattr__(self, name: str) -> Any:
        if self._pooled is None:
            raise _Detached("单元已结束, 其会话不能再访问数据库")
        return getattr(self._pooled, name)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _close_special(self, transaction_reset: bool = False) -> None:
        pass


class GroupUnitSession(UnitSession):
    """A unit's session inside a group: the group's connection, transaction and savepoint."""

    def __init__(self, engine: sa.Engine, pooled: PoolProxiedConnection) -> None:
        super().__init__(engine)
        self._pooled = pooled
        self._view = _UnitConnection(pooled)
        self.ended = False

    def _checkout(self) -> PoolProxiedConnection:
        if self._pooled is None:
            raise _Detached("单元已结束, 其会话不能再访问数据库")
        return self._pooled

    def begin_driver(self) -> None:
        self._checkout()  # the group's transaction and this unit's savepoint are open already

    def get_bind(self, *args: Any, **kwargs: Any) -> sa.Connection:  # type: ignore[override]
        if self._connection is None:
            self._checkout()
            self._connection = sa.Connection(self.engine, connection=self._view)  # type: ignore[arg-type]
            self._connection.execution_options(unit=self)
        return self._connection

    def _driver_in_transaction(self) -> bool:
        return False  # the transaction is the group's, not this unit's

    def commit(self) -> None:
        raise RuntimeError("组提交中的单元不能自行提交 (路由不应标为 grouped)")

    def rollback(self) -> None:
        """Undo what the unit wrote so far and carry on in a fresh savepoint (a route that rolls
        back a refusal before it writes something else)."""
        driver = self._checkout().driver_connection
        driver.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        if Session.in_transaction(self):
            Session.rollback(self)

    def close(self) -> None:
        self._end(committed=False)

    # -- the group ends the unit ------------------------------------------------------------

    def _flush_pending(self) -> None:
        if self.new or self.dirty or self.deleted:
            self.flush()

    def _detach(self) -> None:
        """From here on the session cannot reach the group's connection, which goes back to the
        pool (and to the next group) once the group has ended."""
        self._view._pooled = None
        self._pooled = None

    def _end(self, committed: bool) -> None:
        """End the ORM's bookkeeping, which runs the session's after_commit (or
        after_soft_rollback) listeners: on the request's own thread, after the group ended."""
        if self.ended:
            return
        self.ended = True
        self._detach()
        try:
            if Session.in_transaction(self):
                Session.commit(self) if committed else Session.rollback(self)
        finally:
            Session.close(self)
            self._connection = None


class _Ticket:
    __slots__ = ("fn", "context", "done", "promoted", "value", "error", "session", "group_size")

    def __init__(self, fn: Callable[[Session], Any]) -> None:
        self.fn = fn
        self.context = contextvars.copy_context()
        self.done = threading.Event()
        self.promoted = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.session: GroupUnitSession | None = None
        self.group_size = 0


class GroupCommitter:
    """The group commit of one engine within one process (``committer_for``)."""

    def __init__(self, engine: sa.Engine, max_units: int = MAX_UNITS,
                 max_seconds: float = MAX_GROUP_SECONDS) -> None:
        self.engine = engine
        self.max_units = max_units
        self.max_seconds = max_seconds
        self._lock = threading.Lock()
        self._queue: deque[_Ticket] = deque()
        self._leading = False
        self.last_group_size = 0  # what the last group held, for tests and the benchmark
        self.groups = 0
        self.units = 0

    def run(self, fn: Callable[[Session], Any]) -> Any:
        """``fn(session)`` as one unit of a group; its result once the group committed, or its
        own error, or ``GroupCommitFailed`` when the group's transaction did not commit."""
        ticket = _Ticket(fn)
        with self._lock:
            lead = not self._leading
            if lead:
                self._leading = True
            else:
                self._queue.append(ticket)
        if not lead:
            ticket.done.wait()
            if ticket.promoted:
                lead = True
        if lead:
            self._lead(ticket)
        return self._answer(ticket)

    @staticmethod
    def _answer(ticket: _Ticket) -> Any:
        session, ticket.session = ticket.session, None
        if session is not None:
            session._end(committed=ticket.error is None)
        if ticket.error is not None:
            error, ticket.error = ticket.error, None
            raise error
        return ticket.value

    # -- the leader -------------------------------------------------------------------------

    def _lead(self, first: _Ticket) -> None:
        group = [first]
        try:
            self._write(group)
        finally:
            for t in group[1:]:
                t.done.set()
            with self._lock:
                if self._queue:
                    nxt = self._queue.popleft()
                    nxt.promoted = True
                    nxt.done.set()
                else:
                    self._leading = False

    def _write(self, group: list[_Ticket]) -> None:
        pooled: PoolProxiedConnection | None = None
        try:
            pooled = self.engine.raw_connection()
            driver = pooled.driver_connection
            if self.engine.dialect.name == "sqlite":
                driver.begin_write()  # the writer queue, then BEGIN IMMEDIATE
            self._unit(pooled, group[0])
            until = time.monotonic() + self.max_seconds
            while len(group) < self.max_units and time.monotonic() < until:
                with self._lock:
                    if not self._queue:
                        break
                    ticket = self._queue.popleft()
                group.append(ticket)
                self._unit(pooled, ticket)
            driver.commit()
        except BaseException as exc:
            self._fail(group, exc)
            if pooled is not None:
                try:
                    pooled.driver_connection.rollback()  # also gives the writer queue back
                except Exception:  # the connection is broken: the pool replaces it
                    pooled.invalidate()
            if not isinstance(exc, Exception):
                raise
        finally:
            for t in group:
                if t.session is not None:
                    t.session._detach()
            if pooled is not None:
                pooled.close()
        self.groups += 1
        self.units += len(group)
        self.last_group_size = len(group)
        for t in group:
            t.group_size = len(group)

    def _unit(self, pooled: PoolProxiedConnection, ticket: _Ticket) -> None:
        driver = pooled.driver_connection
        driver.execute(f"SAVEPOINT {SAVEPOINT}")
        session = ticket.session = GroupUnitSession(self.engine, pooled)
        try:
            ticket.value = ticket.context.run(ticket.fn, session)
            session._flush_pending()
        except Exception as exc:
            ticket.error, ticket.value = exc, None
            try:
                driver.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
            except Exception as lost:  # the database ended the transaction under the unit
                raise GroupCommitFailed(f"事务在单元出错时已被数据库结束: {lost}") from exc
        driver.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")

    @staticmethod
    def _fail(group: list[_Ticket], exc: BaseException) -> None:
        log.error("组提交失败 (%d 个请求均未生效): %s", len(group), exc)
        for t in group:
            t.value = None
            t.error = GroupCommitFailed(f"与本请求一并提交的事务未能写入, 本请求未生效: {exc}")
            t.error.__cause__ = exc


_committers: weakref.WeakKeyDictionary[sa.Engine, GroupCommitter] = weakref.WeakKeyDictionary()
_registry = threading.Lock()


def committer_for(session: Session) -> GroupCommitter | None:
    """The group commit for a request's write unit, or None where units commit one by one: the
    setting is off, the database is PostgreSQL (measured: no gain, bench/README.md) or an
    in-memory SQLite, or the unit is read-only."""
    if not isinstance(session, UnitSession) or session.readonly or not get_settings().group_commit:
        return None
    return committer_of(session.engine)


def committer_of(engine: sa.Engine) -> GroupCommitter | None:
    """The engine's group commit (one per engine and process), if its database has one."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    hit = _committers.get(engine)
    if hit is None:
        with _registry:
            hit = _committers.setdefault(engine, GroupCommitter(engine))
    return hit
