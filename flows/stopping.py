"""A drain that stops cleanly on SIGTERM: no new claim, the job in hand finished or handed back.

While a drain runs (in a worker's flow-run process) SIGTERM only raises a flag: the job being run
goes on, the claimed jobs after it are released (``outbox.release``: pending again, the attempt
not counted) and the flow returns. A job still running ``job_stop_grace_seconds`` after the signal
is interrupted (``Stopping`` raised into it): its transaction rolls back and it is released too.
Either way nothing waits for a lease to run out. The batch's rest goes back together with the
interrupted job, inside the job's own ``except`` (``queue``/``take_queued``): after it, Prefect
reports the failed task run to its API, which on a loaded server can outlast the worker's stop
deadline, and a SIGKILL there must not leave the rest leased. Outside the main thread (embedded mode's drain
thread) signals cannot be caught and the drain runs as before.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.settings import get_settings


class Stopping(Exception):  # noqa: N818 - it names the state, not a fault
    """Raised into a job that outlived the stop's grace period."""


_requested = threading.Event()
_queued: list[str] = []  # the claimed jobs after the one in hand (main thread only)


def requested() -> bool:
    return _requested.is_set()


def queue(job_ids: list[str]) -> None:
    """Name the claimed jobs that follow the one about to run (handed back with it on a stop)."""
    _queued[:] = job_ids


def take_queued() -> list[str]:
    out = list(_queued)
    _queued.clear()
    return out


def _on_term(signum: int, frame: Any) -> None:
    if _requested.is_set():
        return
    _requested.set()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, get_settings().job_stop_grace_seconds)


def _on_alarm(signum: int, frame: Any) -> None:
    raise Stopping("工作进程正在停止: 任务已交还, 稍后由其他工作进程执行")


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Catch SIGTERM (and SIGINT) as a stop request for the block's duration."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s in before:
        signal.signal(s, _on_term)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, h in before.items():
            signal.signal(s, h)
