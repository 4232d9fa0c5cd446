"""The applicant's progress page: case number and query code in, status and dates out."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.pages import web
from api.routes import public
from api.routing import Router
from engine.errors import EngineError

router = Router(pages=True)


@router.get("/progress", response_class=HTMLResponse)
def progress_form(request: Request) -> Response:
    return web.render(request, "progress.html", result=None, number="")


@router.post("/progress", response_class=HTMLResponse)
def progress_query(request: Request, session: SessionDep, number: Annotated[str, Form()] = "",
                   code: Annotated[str, Form()] = "") -> Response:
    """POST keeps the query code out of URLs and logs; the API's limiter and lookup are reused."""
    number, code = number.strip(), code.strip()
    error, status, result = None, 200, None
    if not 1 <= len(number) <= 32 or not 6 <= len(code) <= 32:
        error, status = "请填写办件编号和查询码 (6 位以上)", 422
    else:
        try:
            result = public.progress(number, request, session, code)
        except EngineError as exc:
            error, status = exc.detail, exc.status
    return web.render(request, "progress.html", status_code=status, result=result, number=number,
                      error=error)
