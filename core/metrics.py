"""The process's Prometheus metrics, in one registry every layer may count into.

Counters and histograms are per process (each API worker, each drainer); gauges that describe
shared state (the outbox per region) are read from the database when scraped
(``engine.metrics``), so any node's ``/metrics`` tells the same truth about them. With several
server processes behind one port, set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, before
start): prometheus_client then keeps the counters in files there and a scrape sums them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_SECONDS = Histogram(
    "tongban_http_request_duration_seconds", "HTTP 请求耗时 (按路由模板)",
    ["method", "route", "status"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
TRANSITIONS = Counter("tongban_transitions_total", "已提交的办件流转 (按事项与触发动作)",
                      ["item", "trigger"], registry=REGISTRY)
JOBS = Counter("tongban_jobs_finished_total", "本进程执行的自动任务结果 (done 完成, retry 将重试, failed 最终失败)",
               ["job", "outcome"], registry=REGISTRY)
LEASE_EXPIRIES = Counter("tongban_lease_expiries_total", "租约过期后被重新领取的任务 (其执行进程已失联)",
                         ["region"], registry=REGISTRY)

ScrapeFn = Callable[[], Iterable[Metric]]


class _Callbacks(Collector):
    """Gauges computed at scrape time by whoever registered them (the database, the video hub)."""

    def __init__(self, fns: list[ScrapeFn]) -> None:
        self.fns = fns

    def collect(self) -> Iterable[Metric]:
        for fn in self.fns:
            yield from fn()


def render(scrape: list[ScrapeFn]) -> bytes:
    """The text exposition of this process's metrics plus the gauges ``scrape`` computes now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    out = generate_latest(registry)
    if scrape:
        extra = CollectorRegistry()
        extra.register(_Callbacks(scrape))
        out += generate_latest(extra)
    return out
