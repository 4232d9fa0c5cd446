"""Hot statements, compiled once per dialect and run on the unit of work's own DBAPI connection.

On the transition path SQLAlchemy's per-execute machinery (coercion, cache keys, result set-up,
ORM session routing) cost more than the database work itself. A ``Prepared`` statement keeps
SQLAlchemy's SQL and its type processing — rows written here are byte-for-byte what the ORM
writes, and rows read here come back as the ORM would return them — and skips the rest. It runs
inside the unit of work's transaction (``storage.unit``; with any other session, inside that
session's), so it commits or rolls back with everything else.

Only plain statements: no expanding ``IN``, no literal rendering, no ORM entities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Session

from storage.db import bound_engine
from storage.unit import UnitSession

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    sql: str
    positional: bool
    names: tuple[str, ...]  # parameter names, in the order a positional driver wants them
    defaults: dict[str, Callable[[], Any]]  # values not given: INSERT columns' Python defaults, literals
    bound: tuple[tuple[str, Processor], ...]  # (name, bind processor: Python value → driver value)
    columns: tuple[str, ...]  # result column names
    results: tuple[Processor, ...]  # per column: driver value → Python value


def _driver(session: Session) -> Any:
    """The driver connection of the session's transaction (begun if need be)."""
    if isinstance(session, UnitSession):  # storage.db.session_scope's: no SQLAlchemy Connection needed
        return session.driver()
    return session.connection().connection.driver_connection  # any other session: its own


class Sent:
    """A statement sent; its row count is read (and its cursor closed) when first asked for."""

    def __init__(self, cursor: Any) -> None:
        self._cursor, self._rowcount = cursor, None

    @property
    def rowcount(self) -> int:
        if self._rowcount is None:
            self._rowcount = int(self._cursor.rowcount)
            self._cursor.close()
        return self._rowcount


@contextmanager
def pipelined(session: Session) -> Iterator[None]:
    """Send the statements run inside to PostgreSQL together (psycopg's pipeline mode): one round
    trip for a transition's writes instead of one each. Errors and row counts arrive when the
    block ends. On SQLite, in process, the statements simply run."""
    if bound_engine(session).dialect.name != "postgresql":
        yield
        return
    with _driver(session).pipeline():
        yield


class Prepared:
    """A Core statement with named ``bindparam``s; for INSERTs, the keys of the first row decide the columns."""

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, tuple[str, ...] | None], _Plan] = {}

    def _plan(self, dialect: Dialect, keys: tuple[str, ...] | None) -> _Plan:
        hit = self._plans.get((dialect.name, keys))
        if hit is not None:
            return hit
        # SQLAlchemy internals, not public API (hence the pin below the next minor in pyproject.toml):
        # the compiler's bind_names/binds/positiontup/_result_columns and the types'
        # _cached_bind_processor/_cached_result_processor. test_unit_of_work and test_round_trips
        # fail first when an upgrade changes them.
        compiled = self.statement.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        by_name = {compiled.bind_names[b]: b for b in compiled.binds.values()}
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(by_name)
        binds = tuple(by_name[n].type._cached_bind_processor(dialect) for n in names)
        defaults = self._defaults(names, keys or ())
        if not isinstance(self.statement, sa.Insert):  # literals (``sa.literal``) are binds that keep their value
            defaults |= {n: (lambda v=by_name[n].effective_value: v) for n in names if not by_name[n].required}
        result_columns = compiled._result_columns
        plan = _Plan(
            sql=compiled.string, positional=compiled.positional, names=names, defaults=defaults,
            bound=tuple(zip(names, binds, strict=True)),
            columns=tuple(rc.keyname for rc in result_columns),
            results=tuple(rc.type._cached_result_processor(dialect, None) for rc in result_columns),
        )
        self._plans[(dialect.name, keys)] = plan
        return plan

    def _defaults(self, names: tuple[str, ...], keys: tuple[str, ...]) -> dict[str, Callable[[], Any]]:
        """SQLAlchemy fills column defaults at execution time, which this path skips: do it here."""
        if not isinstance(self.statement, sa.Insert):
            return {}
        out: dict[str, Callable[[], Any]] = {}
        for name in set(names) - set(keys):
            default = self.statement.table.c[name].default
            if default is None or not (default.is_scalar or default.is_callable):
                raise ValueError(f"{name}: no value and no Python default")
            arg = default.arg  # type: ignore[union-attr]
            out[name] = (lambda a=arg: a) if default.is_scalar else (lambda a=arg: a(None))
        return out

    @staticmethod
    def _params(plan: _Plan, values: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        if plan.defaults:
            values = {**{n: make() for n, make in plan.defaults.items() if n not in values}, **values}
        get = values.get
        converted = [get(n) if p is None else p(get(n)) for n, p in plan.bound]
        return converted if plan.positional else dict(zip(plan.names, converted, strict=True))

    @staticmethod
    def _row(plan: _Plan, row: Sequence[Any]) -> dict[str, Any]:
        return {name: v if p is None else p(v) for name, p, v in zip(plan.columns, plan.results, row, strict=True)}

    @staticmethod
    def _cursor(session: Session) -> tuple[Any, Dialect]:
        if session.new or session.dirty or session.deleted:
            session.flush()  # the ORM's autoflush, which this path would otherwise skip
        return _driver(session).cursor(), bound_engine(session).dialect

    def execute(self, session: Session, values: dict[str, Any] | None = None) -> int:
        """Run once; returns the number of rows changed."""
        return self.send(session, values).rowcount

    def send(self, session: Session, values: dict[str, Any] | None = None) -> Sent:
        """Run once; inside ``pipelined`` the row count is known only once the block has ended."""
        cursor, dialect = self._cursor(session)
        plan = self._plan(dialect, tuple(values) if self._is_insert else None)
        try:
            cursor.execute(plan.sql, self._params(plan, values or {}))
        except BaseException:
            cursor.close()
            raise
        return Sent(cursor)

    def execute_many(self, session: Session, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        cursor, dialect = self._cursor(session)
        plan = self._plan(dialect, tuple(rows[0]) if self._is_insert else None)
        try:
            cursor.executemany(plan.sql, [self._params(plan, r) for r in rows])
        finally:
            cursor.close()

    def all(self, session: Session, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rows a SELECT (or an INSERT … RETURNING) answers."""
        cursor, dialect = self._cursor(session)
        plan = self._plan(dialect, tuple(values) if self._is_insert and values else None)
        try:
            cursor.execute(plan.sql, self._params(plan, values or {}))
            raw = cursor.fetchall()
        finally:
            cursor.close()
        return [self._row(plan, row) for row in raw]

    def first(self, session: Session, values: dict[str, Any] | None = None) -> dict[str, Any] | None:
        rows = self.all(session, values)
        return rows[0] if rows else None

    def first_alone(self, engine: sa.Engine, values: dict[str, Any], *,
                    driver: Any | None = None) -> dict[str, Any] | None:
        """One read outside any unit of work, with no transaction of ours: on a pooled connection
        (the pool rolls back whatever the driver began when it goes back), or on ``driver``."""
        plan = self._plan(engine.dialect, None)
        pooled = engine.raw_connection() if driver is None else None
        connection = driver if pooled is None else pooled.driver_connection
        # psycopg would wrap the read in BEGIN … ROLLBACK: three round trips where one will do.
        autocommit = engine.dialect.name == "postgresql" and not connection.autocommit
        try:
            if autocommit:
                connection.autocommit = True
            cursor = connection.cursor()
            try:
                cursor.execute(plan.sql, self._params(plan, values))
                row = cursor.fetchone()
            finally:
                cursor.close()  # ends SQLite's implicit read transaction: pins no WAL snapshot
        finally:
            if autocommit and not connection.closed:
                connection.autocommit = False
            if pooled is not None:
                pooled.close()
        return None if row is None else self._row(plan, row)

    @property
    def _is_insert(self) -> bool:
        return isinstance(self.statement, sa.Insert)
