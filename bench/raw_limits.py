"""The physical limits a transition is measured against, in the same run as Tongban's own figures.

* ``raw_sqlite``: what a transition must write, as the shortest Python ``sqlite3`` code does it, on
  the product's own tables (their indexes and triggers included) in a copy of the benchmark's
  database: ``BEGIN IMMEDIATE``; read the case by number; update it with a version check; insert
  a history event and an outbox job; swap the holder row (delete, insert); ``COMMIT``. WAL,
  ``synchronous=NORMAL``, statements cached by the driver, one connection, one transaction after
  another.
* ``raw_pg``: the same statements on PostgreSQL with psycopg, as few round trips as they allow:
  the locked read (``BEGIN`` sent with it), then the four writes and ``COMMIT`` in one pipeline.
* ``bare_app`` (``bench/bare_app.py``): an ASGI callable answering the transition's path with a
  small JSON body and an ``ETag``, served by uvicorn with the same settings and loaded by the same
  client as the API: the framework-free ceiling of HTTP on this machine.

No checks, no hash chain, no documents: a limit, not an alternative.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from storage.tables import T_CASE

CLONES = 200  # cases the raw loop cycles through (each transaction moves one of them on)
COUNTER = "jn-kuayu"
HISTORY_DATA = '{"materials":{"application_form":"received"}}'
PAYLOAD = ('{"number":"3701002026120200004","trigger":"accept","from":"submitted","to":"accepted",'
           '"from_counter":"jn-kuayu","to_counter":"jn-kuayu"}')
HASH = "0" * 64


@dataclass
class RawResult:
    transactions: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.transactions / self.seconds


def _clone_sql(param: str) -> str:
    cols = [c.name for c in T_CASE.c if c.name not in ("id", "number")]
    quoted = ", ".join(f'"{c}"' for c in cols)
    return (f'INSERT INTO cases (number, {quoted}) SELECT {param}, {quoted} FROM cases WHERE id = {param}')


SELECT_CASE = "SELECT * FROM cases WHERE number = {p}"
SELECT_CASE_PG = "SELECT * FROM cases WHERE number = {p} FOR UPDATE"
UPDATE_CASE = ("UPDATE cases SET state = {p}, version = {p}, updated_at = {p}, last_hash = {p} "
               "WHERE id = {p} AND version = {p}")
INSERT_HISTORY = ('INSERT INTO history (case_id, seq, at, kind, actor_id, actor_name, counter_id, "trigger", '
                  "from_state, to_state, data, prev_hash, hash) VALUES ({p}, {p}, {p}, 'transition', NULL, "
                  "'压测员', {p}, 'accept', 'submitted', 'accepted', {p}, {p}, {p})")
INSERT_OUTBOX = ("INSERT INTO outbox (id, case_id, job, region_code, counter_id, payload, status, attempts, "
                 "created_at) VALUES ({p}, {p}, 'notify_applicant', '370100', {p}, {p}, 'pending', 0, {p})")
DELETE_HOLDER = "DELETE FROM case_holders WHERE case_id = {p} AND counter_id = {p}"
INSERT_HOLDER = "INSERT INTO case_holders (case_id, counter_id) VALUES ({p}, {p})"


def _sql(template: str, p: str) -> str:
    return template.replace("{p}", p)


def _seed_cases(execute: Any, template_id: int, param: str) -> list[str]:
    numbers = [f"RAW{uuid.uuid4().hex[:12]}{i:05d}" for i in range(CLONES)]
    clone = _clone_sql(param)
    for n in numbers:
        execute(clone, (n, template_id))
    return numbers


def raw_sqlite(path: str, transactions: int) -> RawResult:
    """The minimal transaction on a copy of the benchmark's SQLite database at ``path``."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    template_id = conn.execute("SELECT min(id) FROM cases").fetchone()[0]
    conn.execute("BEGIN IMMEDIATE")
    numbers = _seed_cases(conn.execute, template_id, "?")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    select, update = _sql(SELECT_CASE, "?"), _sql(UPDATE_CASE, "?")
    history, outbox = _sql(INSERT_HISTORY, "?"), _sql(INSERT_OUTBOX, "?")
    delete_holder, insert_holder = _sql(DELETE_HOLDER, "?"), _sql(INSERT_HOLDER, "?")
    conn.execute("BEGIN IMMEDIATE")
    for n in numbers:  # each clone starts held at the counter, as a case in the queue is
        cid = conn.execute("SELECT id FROM cases WHERE number = ?", (n,)).fetchone()[0]
        conn.execute("INSERT OR IGNORE INTO case_holders (case_id, counter_id) VALUES (?, ?)", (cid, COUNTER))
    conn.execute("COMMIT")
    clock = time.perf_counter
    version_at: int | None = None
    t0 = clock()
    for i in range(transactions):
        number = numbers[i % CLONES]
        now = datetime.now(UTC).isoformat(" ")
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(select, (number,))
        row = cur.fetchone()
        if version_at is None:
            version_at = [d[0] for d in cur.description].index("version")
        case_id, version = row[0], row[version_at]
        if conn.execute(update, ("accepted", version + 1, now, HASH, case_id, version)).rowcount != 1:
            raise RuntimeError("raw sqlite: version check failed")
        conn.execute(history, (case_id, version + 1000, now, COUNTER, HISTORY_DATA, HASH, HASH))
        conn.execute(outbox, (str(uuid.uuid4()), case_id, COUNTER, PAYLOAD, now))
        conn.execute(delete_holder, (case_id, COUNTER))
        conn.execute(insert_holder, (case_id, COUNTER))
        conn.execute("COMMIT")
    seconds = clock() - t0
    conn.close()
    return RawResult(transactions, seconds)


def raw_pg(url: str, transactions: int) -> RawResult:
    """The same statements with psycopg: the locked read, then the writes and COMMIT pipelined."""
    import psycopg

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=False) as conn:
        cur = conn.cursor()
        template_id = cur.execute("SELECT min(id) FROM cases").fetchone()[0]  # type: ignore[index]
        numbers = _seed_cases(cur.execute, template_id, "%s")
        for n in numbers:
            cur.execute("INSERT INTO case_holders (case_id, counter_id) SELECT id, %s FROM cases WHERE number = %s "
                        "ON CONFLICT DO NOTHING", (COUNTER, n))
        conn.commit()
        select, update = _sql(SELECT_CASE_PG, "%s"), _sql(UPDATE_CASE, "%s")
        history, outbox = _sql(INSERT_HISTORY, "%s"), _sql(INSERT_OUTBOX, "%s")
        delete_holder, insert_holder = _sql(DELETE_HOLDER, "%s"), _sql(INSERT_HOLDER, "%s")
        clock = time.perf_counter
        t0 = clock()
        for i in range(transactions):
            number = numbers[i % CLONES]
            now = datetime.now(UTC)
            row = cur.execute(select, (number,), prepare=True).fetchone()
            assert row is not None and cur.description is not None
            got = dict(zip((d.name for d in cur.description), row, strict=True))
            case_id, version = got["id"], got["version"]
            with conn.pipeline():
                cur.execute(update, ("accepted", version + 1, now, HASH, case_id, version), prepare=True)
                cur.execute(history, (case_id, version + 1000, now, COUNTER, HISTORY_DATA, HASH, HASH), prepare=True)
                cur.execute(outbox, (str(uuid.uuid4()), case_id, COUNTER, PAYLOAD, now), prepare=True)
                cur.execute(delete_holder, (case_id, COUNTER), prepare=True)
                cur.execute(insert_holder, (case_id, COUNTER), prepare=True)
                conn.commit()
        seconds = clock() - t0
    return RawResult(transactions, seconds)
