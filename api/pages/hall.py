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
from engine import directory, tickets

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
