"""RFC 9457 problem details for every error, naming the field and the reason."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from engine.errors import EngineError

MEDIA_TYPE = "application/problem+json"
access_log = logging.getLogger("tongban.access")


def log_refusal(request: Request, exc: EngineError) -> None:
    """Every 401/403 is logged with who asked for what and what they lacked (issue #7)."""
    if exc.status in (401, 403):
        auth = request.headers.get("authorization", "") or request.cookies.get("tb_session", "")
        who = "anonymous" if not auth else "token:" + hashlib.sha256(auth.encode()).hexdigest()[:12]
        access_log.warning("refused %s %s %s for %s: %s missing=%s", exc.status, request.method,
                           request.url.path, who, exc.detail, exc.extra.get("missing"))


def problem(status: int, title: str, detail: str, type_: str = "about:blank",
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(EngineError)
    async def _engine(request: Request, exc: EngineError) -> JSONResponse:
        log_refusal(request, exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status == 503:
            headers = {"Retry-After": str(exc.extra.get("retry_after", 5))}
        extra = {k: v for k, v in exc.extra.items() if k != "retry_after"}
        return problem(exc.status, exc.title, exc.detail, exc.type, headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
             "reason": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
        return problem(422, "输入无效", detail, "/problems/invalid-input", errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail),
                       headers=getattr(exc, "headers", None))
