"""Distributed mode: start a region's drain on its own work pool when its outbox has work.

Each region's deployment (``drain-outbox/counter-<region>``, prefect.yaml) also runs on an
interval schedule as a safety net; the dispatcher only shortens the wait. It talks to the
Prefect server's REST API, so it needs nothing but ``PREFECT_API_URL``.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from core.settings import get_settings
from flows.deploy import prefect_http
from flows.outbox import regions_with_work
from flows.probe import Probe

log = logging.getLogger("tongban.dispatch")

FLOW = "drain-outbox"
WAITING = ["SCHEDULED"]
ACTIVE = {"SCHEDULED", "PENDING", "RUNNING"}


def pool_name(region: str) -> str:
    return f"counter-{region}"


class Dispatcher:
    def __init__(self, engine: sa.Engine, api_url: str, stale_seconds: float | None = None) -> None:
        self.engine = engine
        # After this long a run still not finished is presumed dead (same bound as job leases).
        self.stale = stale_seconds or get_settings().job_lease_seconds
        self.http = prefect_http(api_url)
        self.deployments: dict[str, str] = {}
        self.last: dict[str, tuple[str, float]] = {}

    def deployment_id(self, region: str) -> str | None:
        if region not in self.deployments:
            r = self.http.get(f"deployments/name/{FLOW}/{pool_name(region)}")
            if r.status_code == 404:
                return None
            r.raise_for_status()
            self.deployments[region] = r.json()["id"]
        return self.deployments[region]

    def waiting_runs(self, deployment_id: str) -> int:
        """Runs due now and not yet picked up (future schedule slots and stuck runs do not count)."""
        due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        r = self.http.post("flow_runs/count", json={"flow_runs": {
            "deployment_id": {"any_": [deployment_id]}, "state": {"type": {"any_": WAITING}},
            "expected_start_time": {"before_": due}}})
        r.raise_for_status()
        return int(r.json())

    def in_flight(self, region: str) -> bool:
        """Our last run for the region has not finished yet (and is not presumed dead)."""
        last = self.last.get(region)
        if last is None:
            return False
        run_id, created = last
        if time.monotonic() - created > self.stale:
            return False  # a worker died with it: the lease lets its jobs be claimed again
        r = self.http.get(f"flow_runs/{run_id}")
        return r.status_code == 200 and r.json()["state_type"] in ACTIVE

    def dispatch_once(self) -> list[dict[str, Any]]:
        """One flow run per region with claimable jobs, unless one is already on its way."""
        from flows import notify
        from flows.webhooks import pump

        pump(self.engine)  # webhook deliveries that are due become jobs of their regions
        notify.pump(self.engine)  # notifications that are due leave (SMS, mail)
        started = []
        for region in regions_with_work(self.engine):
            dep = self.deployment_id(region)
            if dep is None or self.in_flight(region) or self.waiting_runs(dep):
                continue
            r = self.http.post(f"deployments/{dep}/create_flow_run",
                               json={"parameters": {"region": region}, "tags": [f"region:{region}"]})
            r.raise_for_status()
            self.last[region] = (r.json()["id"], time.monotonic())
            started.append({"region": region, "flow_run": r.json()["id"]})
        return started

    def run_forever(self, poll_seconds: float = 1.0) -> None:
        """Dispatch until killed; with ``TONGBAN_PROBE_PORT`` set, answer /livez, /readyz (the case
        database and the Prefect server both reachable) and /metrics there (flows.probe)."""
        probe = Probe("dispatcher", self.engine, self.prefect_status)
        probe.start()
        try:
            while True:
                try:
                    self.dispatch_once()
                except httpx.HTTPError as exc:  # the Prefect server restarting: try again next round
                    log.warning("调度失败, 下一轮重试: %s", exc)
                probe.beat()
                time.sleep(poll_seconds)
        finally:
            probe.stop()

    def prefect_status(self) -> tuple[bool, dict[str, Any]]:
        try:
            ok = self.http.get("health", timeout=2).status_code == 200
        except httpx.HTTPError:
            ok = False
        return ok, {"prefect": "ok" if ok else "unreachable"}
