"""Applicant-facing progress query (no login) and the health probe."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from api.clientaddr import client_address
from api.contract import answer_headers, not_modified, problems
from api.deps import SessionDep
from api.etags import IfNoneMatchHeader, digest, matches
from api.etags import not_modified as not_modified_answer
from api.models import Health, Progress
from api.routing import Router
from api.schemas import Withdrawal
from core import wire
from core.settings import get_settings
from engine import lifecycle, query_guard
from engine import progress as applicant_progress
from engine.errors import EngineError
from engine.ratelimit import BoundedWindows, retry_after
from storage.db import ping

router = Router(tags=["public"])


class RateLimited(EngineError):
    status, type, title = 429, "/problems/rate-limited", "查询过于频繁"
    help = "短时间内的请求过多。答复的 Retry-After 说明多少秒后可再试, RateLimit 头给出额度。"


class SlidingWindow(BoundedWindows):
    """Per-client request budget over the last minute (in-process: one per server worker, so with
    N workers a client gets N times the setting; the per-case budget is in the database)."""

    def __init__(self) -> None:
        super().__init__(60.0, get_settings().rate_limit_max_keys)

    def allow(self, client: str, per_minute: int) -> bool:
        return self.hit(client, per_minute) is None


@router.get("/healthz", response_model=Health, responses=problems(503))
def get_health(session: SessionDep) -> dict[str, str]:
    """健康检查 (数据库可达)"""
    ping(session)
    return {"status": "ok"}


def checked_progress(request: Request, session: SessionDep, number: str, code: str,
                     counted: bool = False) -> dict[str, Any]:
    """The progress behind the limiters (per client, per case number): the API's and the page's.
    ``counted``: the request that checked this code a moment ago counted it against the client."""
    if not counted:
        limit_client(request)
    query_guard.check_code(request.app.state.engine, number, code)
    return applicant_progress.progress(session, number, code)


PROGRESS_ETAG = {"ETag": {"description": "进度表示的摘要: 轮询时放入 If-None-Match", "schema": {"type": "string"}}}


@router.get("/api/v1/progress/{number}", response_model=Progress,
            responses={**problems(429), **answer_headers(200, PROGRESS_ETAG), **not_modified(PROGRESS_ETAG)})
def get_progress(number: str, request: Request, session: SessionDep,
                 code: Annotated[str, Query(min_length=6, max_length=32, description="查询码")],
                 if_none_match: IfNoneMatchHeader = None) -> Any:

    """办件进度查询 (申请人凭查询码)

    办件进度: status and dates only; a wrong code looks exactly like an unknown number. Limited
    per client and per case number (wrong codes; then 429 with Retry-After for everyone)."""
    body = wire.dumps(checked_progress(request, session, number, code))
    etag = f'"{digest(body)}"'  # the code is checked first: a 304 tells nothing to a guesser
    if matches(if_none_match, etag):
        return not_modified_answer(etag, "private, no-cache")
    return Response(body, media_type="application/json", headers={"ETag": etag, "Cache-Control": "private, no-cache"})


# The query code is the applicant's credential; a 2000-character reason, JSON-escaped, fits.
WITHDRAWAL_BYTES = 32 * 1024
router.allow_larger(r"/api/v1/progress/[^/]+/withdrawal", lambda: WITHDRAWAL_BYTES, uncredentialed=True)


@router.post("/api/v1/progress/{number}/withdrawal", response_model=Progress, responses=problems(409, 429))
def withdraw_application(number: str, body: Withdrawal, request: Request, session: SessionDep) -> Any:

    """申请人撤回申请 (凭查询码)

    撤回: the applicant withdraws the application with the case's query code and a reason."""
    limit_client(request)
    query_guard.check_code(request.app.state.engine, number, body.code)  # before this unit writes
    lifecycle.withdraw_by_applicant(session, number, body.code, body.reason)
    return applicant_progress.progress(session, number, body.code)


def limit_client(request: Request) -> None:
    """The per-client budget of the public (no login) endpoints: progress, appointments."""
    wait = request.app.state.progress_limiter.hit(client_address(request), get_settings().progress_rate_per_minute)
    if wait is not None:
        seconds = retry_after(wait)
        raise RateLimited(f"查询过于频繁, 请 {seconds} 秒后再试", retry_after=seconds)
