"""办事指南 pages (public, phone-friendly): /guide lists and searches, /guide/<code> asks the 情形
questions (a GET form) and shows the exact one-time list."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.pages import web
from api.routing import Router
from engine import guide
from engine.errors import InvalidInput, NotFound

router = Router(pages=True)


@router.get("/guide", response_class=HTMLResponse)
def guide_index(request: Request, session: SessionDep,
                q: Annotated[str, Query(max_length=200)] = "") -> Response:
    results = guide.search(session, q, 8) if q.strip() else []
    return web.render(request, "guide.html", None, items=guide.catalog_guide(session), q=q, results=results)


@router.get("/guide/{code}", response_class=HTMLResponse)
def guide_item(request: Request, session: SessionDep, code: str) -> Response:
    picked = {k[2:]: v[:64] for k, v in list(request.query_params.items())[:20] if k.startswith("s_")}
    error = None
    try:
        g = guide.item_guide(session, code)
        answers = None
        if picked:
            try:
                g = guide.item_guide(session, code, picked)
                answers = g["answers"]
            except InvalidInput as exc:
                error = exc.extra["errors"][0]["reason"]
    except NotFound:
        return web.error_page(request, 404, "没有这个事项", "请从办事指南目录中选择事项。")
    return web.render(request, "guide_item.html", None, g=g, picked=picked, answers=answers, error=error)
