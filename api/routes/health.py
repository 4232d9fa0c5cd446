"""Probes and metrics of an API node: liveness, readiness, Prometheus.

- ``/livez``: the process answers (no database: a database outage must not get every node
  restarted at once).
- ``/readyz``: the case database answers and is at the migrations' head: a node whose code is
  newer than the schema (an upgrade not yet run) takes no traffic.
- ``/healthz``: the database answers (api.routes.public; kept for existing probes).
- ``/metrics``: Prometheus text format (core.metrics, engine.metrics), behind a bearer token
  when ``TONGBAN_METRICS_TOKEN`` is set.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any, Literal

from fastapi import Request, Response
from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import Field

from api.contract import problems
from api.deps import SessionDep
from api.models import _Out
from api.routing import Router
from core import metrics
from core.settings import get_settings
from engine import metrics as engine_metrics
from engine.errors import Unauthenticated, Unavailable
from storage import migrate
from storage.db import ping

router = Router(tags=["public"])
_HEADS = migrate.heads()


class Alive(_Out):
    status: Literal["ok"]


class Ready(_Out):
    status: Literal["ok"]
    schema_revision: list[str] = Field(description="数据库的迁移版本 (与代码的最新版本一致)")


@router.get("/livez", response_model=Alive)
def get_liveness() -> dict[str, str]:
    """存活检查 (进程能应答)"""
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses=problems(503))
def get_readiness(session: SessionDep) -> dict[str, Any]:
    """就绪检查 (数据库可达且迁移到最新)"""
    ping(session)
    have = migrate.applied(session.connection())
    if have != _HEADS:
        raise Unavailable(f"数据库迁移版本 {', '.join(sorted(have)) or '(无)'} 不是代码的最新版本 "
                          f"{', '.join(sorted(_HEADS))}: 请先运行 tongban db upgrade")
    return {"status": "ok", "schema_revision": sorted(have)}


def _video_rooms(request: Request) -> Iterable[Metric]:
    hub = getattr(request.app.state, "video_hub", None)
    live = list(hub.rooms.values()) if hub is not None else []
    rooms = GaugeMetricFamily("tongban_video_live_rooms", "本进程转发媒体的视频会议室 (aiortc)")
    rooms.add_metric([], len(live))
    peers = GaugeMetricFamily("tongban_video_live_peers", "本进程会议室中在线的参与者 (aiortc)")
    peers.add_metric([], sum(1 for r in live for p in r.peers.values() if not p.left))
    return [rooms, peers]


@router.get("/metrics", response_class=Response, responses={
    200: {"description": "Prometheus 文本格式 (text/plain; version=0.0.4)",
          "content": {"text/plain": {"schema": {"type": "string"}}}}, **problems(401, 503)})
def get_metrics(request: Request) -> Response:
    """运行指标 (Prometheus 格式)"""
    token = get_settings().metrics_token
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthenticated("运行指标须带 Authorization: Bearer <TONGBAN_METRICS_TOKEN>")
    engine = request.app.state.engine
    body = metrics.render([lambda: engine_metrics.outbox_families(engine), lambda: _video_rooms(request)])
    return Response(body, media_type=metrics.CONTENT_TYPE)
