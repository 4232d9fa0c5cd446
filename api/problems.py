"""RFC 9457 problem details: one body shape for every API error, naming the field and the reason."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from engine.errors import EngineError

MEDIA_TYPE = "application/problem+json"
access_log = logging.getLogger("tongban.access")


def log_refusal(request: Request, exc: EngineError) -> None:
    """Every 401/403 is logged with who asked for what and what they lacked."""
    if exc.status in (401, 403):
        auth = request.headers.get("authorization", "") or request.cookies.get("tb_session", "")
        who = "anonymous" if not auth else "token:" + hashlib.sha256(auth.encode()).hexdigest()[:12]
        access_log.warning("refused %s %s %s for %s: %s missing=%s", exc.status, request.method,
                           request.url.path, who, exc.detail, exc.extra.get("missing"))


def problem(status: int, title: str, detail: str, type_: str = "about:blank",
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)

