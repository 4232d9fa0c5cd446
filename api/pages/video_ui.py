"""Opening a case's video step from the case page.

The clerk's click opens (or reuses) the room of the current state through ``video.rooms`` and
issues the clerk a join link signed by ``video.links``; the browser then goes to the room page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import SessionDep
from api.pages import case_page, web
from api.routing import Router
from engine.errors import EngineError
from video import links, rooms

router = Router(pages=True)


@router.post("/ui/cases/{number}/video")
def open_video(number: str, request: Request, session: SessionDep,
               csrf: Annotated[str, Form(max_length=128)]) -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    case_page.visible_case(session, actor, number)
    try:
        room = rooms.open_room(session, number, actor, None)
        clerk_id = rooms.check_link_request(session, room, "clerk", None, actor)
    except EngineError as exc:
        session.rollback()
        return case_page.render_case(request, session, actor, number, exc.status, exc.said)
    token, _ = links.issue(number, room["id"], "clerk", actor.name, clerk_id)
    return RedirectResponse(f"/video/join?t={token}", status_code=303)
