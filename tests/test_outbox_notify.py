"""PostgreSQL tells listening drainers (flows.listen) which regions have claimable jobs.

The outbox's triggers NOTIFY ``tongban_outbox`` with the region when a transaction that wrote
pending jobs commits: once per region and statement, never for a rolled-back transaction, and
again when a job goes back to pending (a release, a retry). SQLite has no triggers for it: there
one process drains in-process.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from flows import failed_jobs
from flows.listen import CHANNEL, _conninfo
from flows.outbox import claim, mark_failed, release


@pytest.fixture
def listener(demo: Demo) -> Iterator[psycopg.Connection]:
    if demo.engine.dialect.name != "postgresql":
        with demo.engine.connect() as conn:  # the migration leaves SQLite alone
            assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                                        "AND tbl_name = 'outbox'").scalar_one() == 0
        pytest.skip("NOTIFY is PostgreSQL's")
    with psycopg.connect(_conninfo(demo.engine), autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        yield conn


def heard(conn: psycopg.Connection) -> list[str]:
    return [n.payload for n in conn.notifies(timeout=0.5)]


def test_committed_pending_jobs_wake_their_region_and_rollbacks_do_not(demo: Demo, listener) -> None:  # type: ignore[no-untyped-def]
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")
    assert heard(listener) == []  # intake: the 收件凭证 waits for the pages (drawn when it leaves intake)
    demo.fire("王芳", case["number"], "accept")  # hand-off and notice for 370211, the 收件凭证 where taken in
    assert sorted(heard(listener)) == ["370100", "370211"]
    with demo.engine.connect() as conn:
        job = conn.execute(sa.text("SELECT id FROM outbox WHERE job = 'handoff'")).scalar_one()
        conn.execute(sa.text("UPDATE outbox SET status = 'pending' WHERE id = :j"), {"j": job})
        conn.rollback()
    assert heard(listener) == []
    assert claim(demo.engine, "370211", 10, job_ids=[job])
    assert heard(listener) == []  # claimed: running, nothing to wake anyone for
    release(demo.engine, [job])
    assert heard(listener) == ["370211"]
    claim(demo.engine, "370211", 10, job_ids=[job])
    mark_failed(demo.engine, job, "RuntimeError: 重试")  # back to pending for its next attempt
    assert heard(listener) == ["370211"]
    with demo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE outbox SET status = 'failed' WHERE id = :j"), {"j": job})
    assert heard(listener) == []
    assert failed_jobs.retry(demo.engine, [job]) == [job]
    assert heard(listener) == ["370211"]
