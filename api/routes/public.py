"""Applicant-facing progress query (no login) and the health probe."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request

from api.deps import SessionDep, UnitRoute
from core.settings import get_settings
from engine import catalog
from engine.advance import T_CASE, T_HIST
from engine.errors import EngineError, NotFound
from engine.intake import hash_query_code
from engine.views import STATUS_LABELS

router = APIRouter(route_class=UnitRoute, tags=["public"])


class RateLimited(EngineError):
    status, type, title = 429, "/problems/rate-limited", "查询过于频繁"


class SlidingWindow:
    """Per-client request budget over the last minute (in-process; one per server worker)."""

    def __init__(self) -> None:
        self.hits: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def allow(self, client: str, per_minute: int) -> bool:
        now = time.monotonic()
        with self.lock:
            q = self.hits[client]
            while q and q[0] < now - 60:
                q.popleft()
            if len(q) >= per_minute:
                return False
            q.append(now)
            return True


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, str]:
    session.execute(sa.text("SELECT 1"))
    return {"status": "ok"}


@router.get("/api/v1/progress/{number}")
def progress(number: str, request: Request, session: SessionDep,
             code: Annotated[str, Query(min_length=6, max_length=32, description="查询码")]) -> Any:
    """办件进度: status and dates only; a wrong code looks exactly like an unknown number."""
    client = request.client.host if request.client else "unknown"
    if not request.app.state.progress_limiter.allow(client, get_settings().progress_rate_per_minute):
        raise RateLimited("查询过于频繁, 请一分钟后再试")
    row = session.execute(sa.select(T_CASE).where(T_CASE.c.number == number)).mappings().first()
    if row is None or row["query_code_hash"] != hash_query_code(number, code):
        raise NotFound("未找到该办件, 请核对办件编号和查询码")
    c = catalog.compiled(session, row["item_version_id"])
    steps = session.execute(
        sa.select(T_HIST.c.at, T_HIST.c.kind, T_HIST.c.to_state)
        .where(T_HIST.c.case_id == row["id"], T_HIST.c.kind.in_(["intake", "transition"]))
        .order_by(T_HIST.c.seq)
    ).all()
    return {
        "number": number,
        "item_name": c.definition.name,
        "status": STATUS_LABELS[row["status_code"]],
        "state": c.table[row["state"]].state.label,
        "received_at": row["created_at"],
        "promised_due": row["promised_due"],
        "finished_at": row["finished_at"],
        "steps": [{"at": at, "label": c.table[s].state.label if s in c.table else s} for at, _, s in steps],
    }
