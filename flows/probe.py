"""The small HTTP probe of a long-running process without a web server: the region's drainer
(flows.listen) and the dispatcher (flows.dispatch).

``TONGBAN_PROBE_PORT`` (0: off) on ``TONGBAN_PROBE_HOST`` answers

- ``/livez``: 200 while the process's loop comes round (it beats at least once a second, before
  each job of a batch, and every third of ``probe_stale_seconds`` while a job runs: ``beat_all``
  from the job's lease thread), 503 once it has not for ``probe_stale_seconds`` (stuck: restart it);
- ``/readyz``: 200 when it is alive and the case database answers (``SELECT 1``), else 503;
- ``/metrics``: this process's counters (jobs run, lease expiries, transitions) in Prometheus
  text format.

A plain ``http.server`` on a thread of its own: nothing here may wait on the loop it watches.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import sqlalchemy as sa

from core import metrics
from core.settings import get_settings

log = logging.getLogger("tongban.probe")
_LIVE: weakref.WeakSet[Probe] = weakref.WeakSet()


def beat_all() -> None:
    """Beat every probe of this process: a job in hand that keeps its lease is the loop working."""
    for p in list(_LIVE):
        p.beat()


class Probe:
    def __init__(self, role: str, engine: sa.Engine,
                 extra: Callable[[], tuple[bool, dict[str, Any]]] | None = None) -> None:
        """``extra``: the role's own readiness (its LISTEN connection, the Prefect server) and what
        to say about it."""
        self.role = role
        self.engine = engine
        self.extra = extra or (lambda: (True, {}))
        self.last_beat = time.monotonic()
        self.server: ThreadingHTTPServer | None = None
        _LIVE.add(self)

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def alive(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self.last_beat
        return age < get_settings().probe_stale_seconds, {"role": self.role, "loop_age_seconds": round(age, 3)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        ok, body = self.alive()
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            body["database"] = "ok"
        except sa.exc.SQLAlchemyError as exc:
            ok, body["database"] = False, f"{type(exc).__name__}"
        fine, more = self.extra()
        return ok and fine, body | more

    def start(self, port: int | None = None, host: str | None = None) -> int | None:
        """Listen (``probe_port`` by default); returns the port, or None when the probe is off."""
        s = get_settings()
        port = s.probe_port if port is None else port
        if not port:
            return None
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/metrics":
                    self._answer(200, metrics.render([]), metrics.CONTENT_TYPE)
                    return
                check = {"/livez": probe.alive, "/readyz": probe.ready}.get(self.path)
                if check is None:
                    self._answer(404, b'{"status": "unknown path"}', "application/json")
                    return
                ok, body = check()
                self._answer(200 if ok else 503, json.dumps({"status": "ok" if ok else "unavailable", **body},
                                                           ensure_ascii=False).encode(), "application/json")

            def _answer(self, status: int, body: bytes, media_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: quiet
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer((host or s.probe_host, port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.1,), name=f"probe-{self.role}", daemon=True).start()
        log.info("探针已启动: http://%s:%s/readyz", host or s.probe_host, self.server.server_port)
        return int(self.server.server_port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
