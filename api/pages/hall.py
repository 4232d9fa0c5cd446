"""The hall: the display (large type, refreshing itself, the called numbers and their windows) and
the window clerk's "call next" panel (``hall_call.html``, a fragment the workbench may include;
here also as a page of its own at /ui/hall/call). POST → 303 (PRG), CSRF-checked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep
from api.pages import web
from api.routing import Router
from engine import directory, evaluations, tickets
from engine.errors import EngineError

router = Router(pages=True)
REFRESH_SECONDS = 5


@router.get("/hall", response_class=HTMLResponse)
def hall_display(request: Request, session: SessionDep,
                 counter: Annotated[list[str] | None, Query(max_length=20)] = None) -> Response:
    board = tickets.hall(session, counter)
    names = directory.counter_names(session, counter or [])
    return web.render(request, "hall.html", board=board, latest=board["calls"][0] if board["calls"] else None,
                      refresh=REFRESH_SECONDS, counters=list(names.values()))


@router.get("/ui/hall/call", response_class=HTMLResponse)
def call_panel(request: Request, session: SessionDep, called: Annotated[int | None, Query(ge=1)] = None) -> Response:
    actor = web.require_actor(request, session)
    ticket = tickets.view(session, called) if called else None
    return web.render(request, "hall_call_page.html", actor=actor, ticket=ticket,
                      waiting=tickets.hall(session, [actor.counter_id] if actor.counter_id else None)["waiting"])


@router.post("/ui/hall/call")
def call_next(request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=128)]) -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    ticket = tickets.call_next(session, actor)
    return RedirectResponse("/ui/hall/call" + (f"?called={ticket['id']}" if ticket else ""), status_code=303)


@router.get("/ui/hall/pad", response_class=HTMLResponse)
def evaluation_pad(request: Request, session: SessionDep,
                   done: Annotated[int | None, Query(ge=1, le=5)] = None) -> Response:
    """一次一评: the tablet at the window, signed in as the window's clerk, rates the last call."""
    actor = web.require_actor(request, session)
    ticket = tickets.last_called(session, actor)
    return web.render(request, "evaluation_pad.html", actor=actor, ticket=ticket, levels=evaluations.LEVELS,
                      reasons=evaluations.REASONS, done=evaluations.LEVELS.get(done or 0), error=None)


@router.post("/ui/hall/pad")
def evaluation_pad_rate(request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=128)],
                        ticket: Annotated[int, Form(ge=1)], level: Annotated[int, Form(ge=1, le=5)],
                        reasons: Annotated[list[str] | None, Form(max_length=8)] = None,
                        text: Annotated[str, Form(max_length=500)] = "") -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    try:
        evaluations.rate_visit(session, actor, ticket, level, reasons or [], text)
    except EngineError as exc:
        session.rollback()
        return web.render(request, "evaluation_pad.html", actor=actor, status_code=exc.status,
                          ticket=tickets.last_called(session, actor), levels=evaluations.LEVELS,
                          reasons=evaluations.REASONS, done=None, error=exc.detail)
    return RedirectResponse(f"/ui/hall/pad?done={level}", status_code=303)
