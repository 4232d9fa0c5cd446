"""Retry backoff of outbox jobs: a failed attempt waits (exponentially, with jitter) before the
next; claims, the drainers' wake-ups and the oldest-age gauge all go by ``available_at``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from core import clock
from core.settings import get_settings
from engine.metrics import outbox as outbox_gauges
from flows import failed_jobs
from flows.listen import wait_seconds
from flows.outbox import backoff_seconds, claim, mark_failed, next_available
from storage.tables import T_OUT


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """30 s after the first failed attempt, doubling, no jitter: instants the test can name."""
    s = get_settings()
    monkeypatch.setattr(s, "job_retry_base_seconds", 30.0)
    monkeypatch.setattr(s, "job_retry_max_seconds", 600.0)
    monkeypatch.setattr(s, "job_retry_jitter", 0.0)


def _forwarded_job(demo: Demo) -> str:
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")
    demo.fire("王芳", case["number"], "accept")
    with demo.engine.connect() as conn:
        return str(conn.execute(sa.select(T_OUT.c.id).where(T_OUT.c.job == "handoff")).scalar_one())


def _row(demo: Demo, job: str) -> sa.Row:
    with demo.engine.connect() as conn:
        return conn.execute(sa.select(T_OUT.c.status, T_OUT.c.attempts, T_OUT.c.available_at)
                            .where(T_OUT.c.id == job)).one()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def test_the_backoff_doubles_up_to_its_cap_and_spreads_by_the_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    s = get_settings()
    monkeypatch.setattr(s, "job_retry_base_seconds", 10.0)
    monkeypatch.setattr(s, "job_retry_max_seconds", 60.0)
    monkeypatch.setattr(s, "job_retry_jitter", 0.2)
    assert [backoff_seconds(n, draw=0.5) for n in (1, 2, 3, 4, 5)] == [10.0, 20.0, 40.0, 60.0, 60.0]
    assert backoff_seconds(1, draw=0.0) == pytest.approx(8.0) and backoff_seconds(1, draw=1.0) == pytest.approx(12.0)
    spread = {round(backoff_seconds(3), 3) for _ in range(50)}
    assert len(spread) > 10 and all(32.0 <= d <= 48.0 for d in spread)  # jobs failing together come back apart


def test_a_failed_attempt_is_not_claimed_before_its_backoff_ends(demo: Demo, backoff: None) -> None:
    job = _forwarded_job(demo)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    with demo.engine.begin() as conn:  # it has been waiting an hour: the gauge would say 3,600 s
        conn.execute(sa.update(T_OUT).where(T_OUT.c.id == job).values(created_at=start - timedelta(hours=1)))
        conn.execute(sa.update(T_OUT).where(T_OUT.c.id != job).values(status="done"))  # the gauge: this job's
    with clock.frozen(start):
        assert [j["id"] for j in claim(demo.engine, "370211", 10, job_ids=[job])] == [job]
        assert mark_failed(demo.engine, job, "ConnectionError: 对方系统不可用") == "pending"
        status, attempts, available = _row(demo, job)
        assert (status, attempts, _aware(available)) == ("pending", 1, start + timedelta(seconds=30))
        assert claim(demo.engine, "370211", 10, job_ids=[job]) == []
        assert next_available(demo.engine, "370211") == start + timedelta(seconds=30)
        assert wait_seconds(demo.engine, "370211", 60.0) == pytest.approx(30.0)  # the drainer wakes then
        assert wait_seconds(demo.engine, "370211", 5.0) == 5.0
        assert outbox_gauges(demo.engine)["370211"]["oldest_age"] < 1.0  # waiting since it is due, not since made

        clock.advance(timedelta(seconds=40))  # 10 s past its backoff
        assert outbox_gauges(demo.engine)["370211"]["oldest_age"] == pytest.approx(10.0, abs=1.0)
        assert next_available(demo.engine, "370211") is None
        assert [j["id"] for j in claim(demo.engine, "370211", 10, job_ids=[job])] == [job]
        assert mark_failed(demo.engine, job, "ConnectionError: 对方系统不可用") == "pending"
        assert _aware(_row(demo, job).available_at) == start + timedelta(seconds=40 + 60)  # doubled

        with demo.engine.begin() as conn:  # given up on (as after the last attempt), then re-run by hand
            conn.execute(sa.update(T_OUT).where(T_OUT.c.id == job).values(status="failed"))
        assert failed_jobs.retry(demo.engine, [job]) == [job]
        assert tuple(_row(demo, job)) == ("pending", 0, None)
        assert [j["id"] for j in claim(demo.engine, "370211", 10, job_ids=[job])] == [job]  # at once
