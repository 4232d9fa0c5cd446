"""A region's long-running drainer: one flow run that stays up and claims jobs as they commit.

PostgreSQL tells it (``LISTEN "tongban_outbox_<region>"``: the outbox's triggers NOTIFY each
region's own channel at commit, migration 0035), so it wakes for its region's commits only, not for
every region's, and a forwarded case reaches the destination's queue in well under a second,
against several seconds for a flow run per drain cycle (the worker's poll, then a process per run).
Each job is still one task run ``<case number> · <job>`` inside this flow run, so a case's work
shows in the Prefect UI as before. It also drains every ``listen_poll_seconds`` without a
notification: jobs whose lease ran out make no noise; and when a job's retry backoff ends sooner,
then (a job put back after a failed attempt notifies at once, while it is not yet claimable). The
probe beats before every job, so a long batch on a healthy drainer does not read as stuck. The
deployments' schedules and ``tongban dispatch`` stay the safety net (claims never overlap: ``FOR
UPDATE SKIP LOCKED``). After ``listen_max_hours`` the run ends and ``tongban worker`` starts the
next, so no flow run grows forever. SIGTERM stops it as it stops any drain (``flows.stopping``).
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

import psycopg
from prefect import flow
from psycopg import sql
from psycopg.conninfo import make_conninfo

from core import logs
from core.clock import now
from core.settings import get_settings
from flows import stopping
from flows.drain import get_engine, run_claimed
from flows.outbox import claim, next_available
from flows.probe import Probe

CHANNEL_PREFIX = "tongban_outbox_"
_REGION = re.compile(r"^\d{6}$")  # 行政区划代码, as the directory takes them (engine.directory_manage)


def channel(region: str) -> str:
    """The region's NOTIFY channel (the trigger of migration 0035 names it the same way): a
    region of the directory, or the video queue (``video_job_queue``, Janus's recordings)."""
    if not (_REGION.match(region) or region == get_settings().video_job_queue):
        raise ValueError(f"地区应为 6 位行政区划代码或视频录像队列名: {region!r}")
    return CHANNEL_PREFIX + region


def listen(conn: psycopg.Connection, region: str) -> None:
    """LISTEN on the region's channel only (a quoted identifier: the name as the trigger sends it)."""
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel(region))))


def _conninfo(engine: Any) -> str:
    """libpq's connection string for the engine's URL, each query parameter (``sslmode``,
    ``sslrootcert``, ``sslcert`` …) passed on as given, as the engine's own connections get them.
    Not the URL re-rendered: SQLAlchemy writes a space as ``+``, which libpq keeps (a CA file under
    ``/etc/ssl/gov ca/`` became ``/etc/ssl/gov+ca/``)."""
    url = engine.url
    params = {k: str(v) for k, v in url.translate_connect_args(username="user", database="dbname").items()}
    params.update({k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()})
    return make_conninfo(**params)


def wait_seconds(engine: Any, region: str, poll_seconds: float) -> float:
    """How long the drainer may sleep without a notification: the poll, or less when a job of the
    region comes out of its retry backoff sooner (``available_at``)."""
    at = next_available(engine, region)
    if at is None:
        return poll_seconds
    return max(0.0, min(poll_seconds, (at - now()).total_seconds()))


@flow(name="drain-listen")
def drain_listening(region: str, max_hours: float | None = None) -> dict[str, Any]:
    """Claim and run the region's jobs whenever PostgreSQL says some committed, until stopped."""
    s = get_settings()
    engine = get_engine()
    until = time.monotonic() + 3600 * (max_hours or s.listen_max_hours)
    total: dict[str, Any] = {"claimed": 0, "done": 0, "failed": 0, "lost": 0, "wakes": 0, "region": region}
    with stopping.stop_on_sigterm(), psycopg.connect(_conninfo(engine), autocommit=True) as conn:
        listen(conn, region)
        # /livez, /readyz, /metrics when TONGBAN_PROBE_PORT is set (flows.probe).
        probe = Probe("worker", engine, lambda: (not conn.closed, {"region": region, "listening": not conn.closed}))
        probe.start()
        woke, due = True, 0.0
        try:
            while not stopping.requested() and time.monotonic() < until:
                probe.beat()
                if woke or time.monotonic() >= due:
                    while not stopping.requested() and (claimed := claim(engine, region, s.job_batch_size)):
                        for k, v in run_claimed(claimed, beat=probe.beat).items():
                            total[k] += v
                        probe.beat()
                    # A job waiting out its retry backoff makes no notification when it comes due.
                    due = time.monotonic() + wait_seconds(engine, region, s.listen_poll_seconds)
                woke = False
                # Our region's channel only; the short timeout also lets a stop through.
                for _note in conn.notifies(timeout=max(0.05, min(1.0, due - time.monotonic()))):
                    woke = True
                    total["wakes"] += 1
                    break
        except stopping.Stopping:
            pass  # the job in hand was handed back (flows.jobs); nothing else was claimed
        finally:
            probe.stop()
    return total | {"stopped": stopping.requested()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="地区常驻任务执行器 (PostgreSQL LISTEN/NOTIFY)")
    p.add_argument("--region", required=True)
    args = p.parse_args(argv)
    logs.configure("worker")
    drain_listening(args.region)


if __name__ == "__main__":
    main()
