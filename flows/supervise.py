"""``tongban worker``'s process: Prefect's worker and the region's long-running drainer as
children, stopped cleanly on SIGTERM.

The drainer (``flows.listen``, unless ``listen=False``) takes jobs as they commit; Prefect's
process worker runs the scheduled and dispatched drains (the safety net) and the deadline sweep.
Prefect's worker does not exit on SIGTERM, and its flow runs are processes of their own. On
SIGTERM (or SIGINT) this freezes the Prefect worker (SIGSTOP: it starts no new flow run), sends
SIGTERM to the drainer and to each flow-run process (``flows.stopping``: the job in hand finishes
or is handed back, the rest of the batch is released), waits for them, then kills what is left
and exits: within ``worker_stop_seconds``. Nothing then waits for a lease: the lease
(``job_lease_seconds``) only matters for a worker that died without a SIGTERM (SIGKILL, power,
network). A drainer that ends (its flow run's ``listen_max_hours``, or a lost connection) is
started again. Every ``sweep_check_seconds`` it checks again that the deadline sweep sits on a
pool with a live worker (``flows.deploy.ensure_sweep``), so the sweep moves here when the worker
that had it stops, not only when a worker starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.settings import ROOT, get_settings

log = logging.getLogger(__name__)


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            out.setdefault(ppid, []).append(int(d.name))
    return out


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), children first."""
    children, out, todo = _children(), [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited already


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, start_new_session=True)


class Every:
    """Call ``action`` at most once per ``seconds`` from a loop that comes round more often; an
    error is logged and the next period tries again (a Prefect server that is briefly away must not
    stop the worker)."""

    def __init__(self, seconds: float, action: Callable[[], object]) -> None:
        self.seconds, self.action = seconds, action
        self.last = time.monotonic()

    def tick(self) -> bool:
        """Run the action if its period is over; True when it ran (and did not fail)."""
        if time.monotonic() - self.last < self.seconds:
            return False
        self.last = time.monotonic()
        try:
            self.action()
        except Exception:  # noqa: BLE001 - the worker goes on; the next period retries
            log.warning("periodic check failed", exc_info=True)
            return False
        return True


def run_worker(pool: str, region: str, listen: bool = True, checks: list[Every] | None = None) -> int:
    """Run ``prefect worker start`` for ``pool`` (and the region's drainer) until the Prefect
    worker exits or a stop is asked for; ``checks`` (the deadline sweep's placement) come round
    meanwhile."""
    proc = _spawn("prefect", "worker", "start", "--pool", pool, "--type", "process")
    drainer = _spawn("flows.listen", "--region", region) if listen else None
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    while proc.poll() is None and not stop.wait(0.5):
        if drainer is not None and drainer.poll() is not None:
            drainer = _spawn("flows.listen", "--region", region)
        for check in checks or []:
            check.tick()
    if not stop.is_set():
        if drainer is not None:
            _signal([drainer.pid, *descendants(drainer.pid)], signal.SIGKILL)
        return proc.returncode or 0
    deadline = time.monotonic() + get_settings().worker_stop_seconds - 0.5
    _signal([proc.pid], signal.SIGSTOP)
    runs = [*_children().get(proc.pid, []), *([drainer.pid] if drainer is not None else [])]
    _signal(runs, signal.SIGTERM)
    while any(_alive(p) for p in runs) and time.monotonic() < deadline:
        time.sleep(0.1)
    rest = [*descendants(proc.pid), proc.pid]
    if drainer is not None:
        rest += [*descendants(drainer.pid), drainer.pid]
    _signal(rest, signal.SIGKILL)
    proc.wait()
    if drainer is not None:
        drainer.wait()
    return 0
