"""The unit of work: one pooled connection and one transaction, shared by two ways in.

The transition path (``storage.prepared``) runs its statements straight on the driver
connection; everything else uses the ORM session as usual. Both ways use the same connection and
the same transaction, which begins when the first of them needs it. A unit that only runs
prepared statements never builds SQLAlchemy's Connection or session transaction, which had cost
a transition more than SQLite's own work (about 40 µs of ~230).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import PoolProxiedConnection
from sqlmodel import Session


class UnitSession(Session):
    """An ORM session whose connection is the unit's, begun on first use by either path."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(expire_on_commit=False)
        self.engine = engine  # may carry execution options (``readonly``)
        self.readonly = bool(engine.get_execution_options().get("readonly"))
        self._pooled: PoolProxiedConnection | None = None
        self._connection: sa.Connection | None = None

    # -- the connection, for both paths -----------------------------------------------------

    def _checkout(self) -> PoolProxiedConnection:
        if self._pooled is None:
            self._pooled = self.engine.raw_connection()
        return self._pooled

    def driver(self) -> Any:
        """The driver connection, inside the unit's transaction (begun here if need be)."""
        self.begin_driver()
        return self._checkout().driver_connection

    def begin_driver(self) -> None:
        driver = self._checkout().driver_connection
        # psycopg begins on the first statement by itself; SQLite's storage.sqlite_writer queues.
        if self.engine.dialect.name == "sqlite" and not driver.in_transaction:
            driver.begin(self.readonly)

    def _driver_in_transaction(self) -> bool:
        if self._pooled is None:
            return False
        driver = self._pooled.driver_connection
        if self.engine.dialect.name == "sqlite":
            return bool(driver.in_transaction)
        return int(driver.info.transaction_status) != 0  # psycopg: IDLE

    def get_bind(self, *args: Any, **kwargs: Any) -> sa.Connection:  # type: ignore[override]
        """The ORM's way in: a SQLAlchemy Connection around the unit's pooled connection, made
        when first asked for; its "begin" event (storage.db) joins the unit's transaction."""
        if self._connection is None:
            self._connection = sa.Connection(self.engine, connection=self._checkout())
            self._connection.execution_options(unit=self)
        return self._connection

    # -- ending the unit --------------------------------------------------------------------

    def in_transaction(self) -> bool:
        return super().in_transaction() or self._driver_in_transaction()

    def commit(self) -> None:
        # Pending ORM objects first, then the one driver transaction, then the session's own
        # bookkeeping (its after_commit listeners run once the data is durable).
        if self.new or self.dirty or self.deleted:
            self.flush()
        if self._driver_in_transaction():
            assert self._pooled is not None
            self._pooled.driver_connection.commit()
        if super().in_transaction():  # the ORM was used: end its transaction too
            super().commit()

    def rollback(self) -> None:
        if self._driver_in_transaction():
            assert self._pooled is not None
            self._pooled.driver_connection.rollback()
        if super().in_transaction():
            super().rollback()

    def close(self) -> None:
        try:
            if super().in_transaction() or self.identity_map or self.new or self.deleted:
                super().close()  # the ORM was used: let it clear its state
            if self._driver_in_transaction():
                assert self._pooled is not None
                self._pooled.driver_connection.rollback()
        finally:
            connection, pooled = self._connection, self._pooled
            self._connection = self._pooled = None
            if connection is not None:
                connection.close()  # gives the pooled connection back
            elif pooled is not None:
                pooled.close()
