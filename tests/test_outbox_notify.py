"""PostgreSQL tells listening drainers (flows.listen) which regions have claimable jobs.

The outbox's triggers NOTIFY the region's own channel ``tongban_outbox_<region>`` (payload: the
region) when a transaction that wrote pending jobs commits: once per region and statement, never
for a rolled-back transaction, and again when a job goes back to pending (a release, a retry). A
drainer LISTENs on its region's channel only, so another region's commits do not wake it. SQLite
has no triggers for it: there one process drains in-process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from core.clock import now
from flows import drain, failed_jobs
from flows.listen import _conninfo, channel, drain_listening, listen
from flows.outbox import claim, mark_failed, release
from storage import migrate

JINAN, QINGDAO, PUDONG = "370100", "370211", "310115"


@contextmanager
def drainer_of(demo: Demo, *regions: str) -> Iterator[psycopg.Connection]:
    """A connection subscribed as the regions' listening drainers subscribe (``flows.listen.listen``)."""
    with psycopg.connect(_conninfo(demo.engine), autocommit=True) as conn:
        for region in regions:
            listen(conn, region)
        yield conn


@pytest.fixture
def listener(demo: Demo) -> Iterator[psycopg.Connection]:
    if demo.engine.dialect.name != "postgresql":
        with demo.engine.connect() as conn:  # the migration leaves SQLite alone
            assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                                        "AND tbl_name = 'outbox'").scalar_one() == 0
        pytest.skip("NOTIFY is PostgreSQL's")
    with drainer_of(demo, JINAN, QINGDAO) as conn:  # both regions this module's cases touch
        yield conn


def heard(conn: psycopg.Connection) -> list[str]:
    return [n.payload for n in conn.notifies(timeout=0.5)]


def notes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [(n.channel, n.payload) for n in conn.notifies(timeout=0.5)]


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


def test_each_region_has_a_channel_of_its_own_and_nothing_else_names_one() -> None:
    assert channel(QINGDAO) == "tongban_outbox_370211"
    assert channel("video") == "tongban_outbox_video"  # the video queue's worker, on Janus's machine
    for bad in ("37021", "3702110", "370211; UNLISTEN *", "tongban", ""):
        with pytest.raises(ValueError, match="行政区划代码"):
            channel(bad)


def test_a_drainer_hears_its_own_regions_jobs_and_not_another_regions(demo: Demo, listener) -> None:  # type: ignore[no-untyped-def]
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region=QINGDAO)
    with drainer_of(demo, PUDONG) as pudong, drainer_of(demo, QINGDAO) as qingdao, \
            psycopg.connect(_conninfo(demo.engine), autocommit=True) as shared:
        shared.execute("LISTEN tongban_outbox")  # 0018's one channel for all: nobody sends there now
        demo.fire("王芳", case["number"], "accept")  # jobs for 370211 and for 370100, none for 310115
        # The trigger's channel for a job is its region's, the region the payload.
        assert notes(qingdao) == [("tongban_outbox_370211", QINGDAO)]
        assert notes(pudong) == []
        assert notes(shared) == []
        assert sorted(notes(listener)) == [("tongban_outbox_370100", JINAN), ("tongban_outbox_370211", QINGDAO)]
        with demo.engine.begin() as conn:  # a job of Pudong's own: its drainer wakes, once
            job = conn.execute(sa.text("SELECT id FROM outbox WHERE region_code = :r LIMIT 1"),
                               {"r": QINGDAO}).scalar_one()
            conn.execute(sa.text("UPDATE outbox SET status = 'pending', region_code = :r WHERE id = :j"),
                         {"r": PUDONG, "j": job})
        assert notes(pudong) == [("tongban_outbox_310115", PUDONG)]
        assert notes(qingdao) == [] and notes(shared) == []


def test_the_downgrade_gives_back_the_one_shared_channel(demo: Demo, listener) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region=QINGDAO)
    with demo.engine.begin() as conn:
        command.downgrade(migrate._config(conn), "0038_outbox_backoff")
    try:
        with psycopg.connect(_conninfo(demo.engine), autocommit=True) as shared:
            shared.execute("LISTEN tongban_outbox")
            demo.fire("王芳", case["number"], "accept")
            assert sorted(notes(shared)) == [("tongban_outbox", JINAN), ("tongban_outbox", QINGDAO)]
            assert notes(listener) == []
    finally:
        migrate.upgrade(demo.engine)
    with drainer_of(demo, QINGDAO) as qingdao:  # back at the head: the region's channel again
        with demo.engine.begin() as conn:
            conn.execute(sa.text("UPDATE outbox SET status = 'pending' WHERE job = 'handoff'"))
        assert notes(qingdao) == [("tongban_outbox_370211", QINGDAO)]


def test_the_listening_drainer_wakes_for_its_own_regions_commits_only(demo: Demo, listener) -> None:  # type: ignore[no-untyped-def]
    """``drain_listening`` itself (its loop, without Prefect's engine): Qingdao's and Jinan's
    commits do not wake Pudong's drainer; a job of Pudong's does, once (put back with its retry
    still ahead, so there is nothing to claim and nothing to run)."""
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region=QINGDAO)
    out: dict[str, object] = {}
    drain.use_engine(demo.engine)
    t = threading.Thread(target=lambda: out.update(drain_listening.fn(PUDONG, max_hours=12 / 3600)))
    t.start()
    try:
        listening = sa.text("SELECT count(*) FROM pg_stat_activity WHERE query = :q")
        deadline = time.monotonic() + 5
        with demo.engine.connect() as conn:
            while not conn.execute(listening, {"q": f'LISTEN "{channel(PUDONG)}"'}).scalar_one():
                assert time.monotonic() < deadline, "the drainer never listened"
                conn.rollback()  # pg_stat_activity is read once per transaction
                time.sleep(0.05)
        demo.fire("王芳", case["number"], "accept")  # jobs for 370211 and 370100
        time.sleep(1)
        with demo.engine.begin() as conn:
            conn.execute(sa.text("UPDATE outbox SET status = 'pending', region_code = :r, available_at = :at "
                                 "WHERE job = 'handoff'"), {"r": PUDONG, "at": now() + timedelta(hours=1)})
    finally:
        t.join(20)  # it ends after its 12 s (max_hours): time enough on a loaded machine
        drain.use_engine(None)
    assert not t.is_alive()
    assert out["wakes"] == 1 and out["claimed"] == 0, out
    assert sorted(heard(listener)) == [JINAN, QINGDAO]  # the other regions' drainers were told
