"""Embedded mode: the server process drains the outbox itself, on Prefect's in-process engine.

A background thread finds regions with claimable jobs and runs ``drain_outbox`` for each (a flow
run per region and cycle), and runs the deadline sweep now and then. Without ``PREFECT_API_URL``
Prefect starts its own ephemeral API (state under ``<data_dir>/prefect``): nothing to install or
start on a fresh machine. Several server workers may each run one: claims never overlap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import sqlalchemy as sa

from core.settings import get_settings

log = logging.getLogger(__name__)


def prefect_defaults() -> None:
    """Keep Prefect's local state with ours unless the operator configured Prefect already."""
    s = get_settings()
    os.environ.setdefault("PREFECT_HOME", str(s.data_dir / "prefect"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A busy machine can take longer than Prefect's 20 s default to start the ephemeral API.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@contextmanager
def without_heartbeats() -> Iterator[None]:
    """Flow runs of this drainer send no heartbeats, unless the operator set their frequency.

    A flow run's heartbeat thread sleeps in one-second steps, and the run ends by joining it: up
    to a second per drain cycle and region (measured: 0.4 s of a 100-job run's 3 s; a flow run
    per transition went from 0.9 to 7 a second without it). Heartbeats serve automations that
    notice a remote worker's crashed runs; here the runs and the drainer are one process.
    """
    if "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" in os.environ:
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


class EmbeddedDrainer:
    def __init__(self, engine: sa.Engine | None = None, poll_seconds: float | None = None) -> None:
        prefect_defaults()
        from flows import drain

        self.engine = engine or drain.get_engine()
        drain.use_engine(self.engine)
        self.poll = poll_seconds or get_settings().flows_poll_seconds
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        # The first sweep waits one interval: starting Prefect at boot for it would slow startup.
        self.last_sweep = time.monotonic()
        self.runs = 0

    def drain_once(self) -> list[dict[str, Any]]:
        from flows import notify
        from flows.drain import drain_outbox
        from flows.outbox import regions_with_work
        from flows.webhooks import pump

        pump(self.engine)  # webhook deliveries that are due join this cycle's jobs
        notify.pump(self.engine)  # notifications that are due leave (SMS, mail)
        regions = regions_with_work(self.engine)
        if not regions:
            return []
        with without_heartbeats():
            out = [drain_outbox(region) for region in regions]
        self.runs += len(out)
        return out

    def drain_until_idle(self, timeout: float = 60.0) -> int:
        """Drain until no claimable job is left (follow-up jobs included); returns flow runs."""
        from flows.outbox import regions_with_work

        deadline, runs = time.monotonic() + timeout, 0
        while regions_with_work(self.engine) and time.monotonic() < deadline:
            runs += len(self.drain_once())
        return runs

    def _loop(self) -> None:
        from flows.drain import deadline_sweep

        while not self.stop_event.is_set():
            try:
                self.drain_once()
                if time.monotonic() - self.last_sweep > get_settings().deadline_sweep_seconds:
                    self.last_sweep = time.monotonic()
                    with without_heartbeats():
                        deadline_sweep()
            except Exception:  # a bad cycle must not stop the drainer; the job records its error
                log.exception("outbox drain cycle failed")
            self.stop_event.wait(self.poll)

    def start(self) -> EmbeddedDrainer:
        self.thread = threading.Thread(target=self._loop, name="tongban-outbox", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to stop; a cycle still running is abandoned (daemon thread): its claimed
        jobs are reclaimed after their lease, and nothing half-done was committed."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)


def install(app: Any) -> None:
    """Start the drainer with the app's lifespan and stop it on shutdown (wraps any lifespan)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        drainer = EmbeddedDrainer().start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            await anyio.to_thread.run_sync(drainer.stop)

    app.router.lifespan_context = lifespan
