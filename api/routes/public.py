"""Applicant-facing progress query (no login) and the health probe."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Annotated, Any

from fastapi import Query, Request

from api.deps import SessionDep
from api.routing import Router
from api.schemas import Withdrawal
from core.settings import get_settings
from engine import lifecycle
from engine import progress as applicant_progress
from engine.errors import EngineError
from storage.db import ping

router = Router(tags=["public"])


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
    ping(session)
    return {"status": "ok"}


@router.get("/api/v1/progress/{number}")
def progress(number: str, request: Request, session: SessionDep,
             code: Annotated[str, Query(min_length=6, max_length=32, description="查询码")]) -> Any:
    """办件进度: status and dates only; a wrong code looks exactly like an unknown number."""
    _limit(request)
    return applicant_progress.progress(session, number, code)


# The query code is the applicant's credential; a 2000-character reason, JSON-escaped, fits.
WITHDRAWAL_BYTES = 32 * 1024
router.allow_larger(r"/api/v1/progress/[^/]+/withdrawal", lambda: WITHDRAWAL_BYTES, uncredentialed=True)


@router.post("/api/v1/progress/{number}/withdrawal")
def withdraw(number: str, body: Withdrawal, request: Request, session: SessionDep) -> Any:
    """撤回: the applicant withdraws the application with the case's query code and a reason."""
    _limit(request)
    lifecycle.withdraw_by_applicant(session, number, body.code, body.reason)
    return applicant_progress.progress(session, number, body.code)


def _limit(request: Request) -> None:
    client = request.client.host if request.client else "unknown"
    if not request.app.state.progress_limiter.allow(client, get_settings().progress_rate_per_minute):
        raise RateLimited("查询过于频繁, 请一分钟后再试")
