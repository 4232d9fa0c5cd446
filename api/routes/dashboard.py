"""督查看板数据: one JSON endpoint scoped to the supervisor's regions, polled by the dashboard page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from api.contract import problems
from api.deps import BearerDep, SessionDep
from api.models import Dashboard
from api.pages import web
from api.routing import Router
from engine import dashboard
from engine.actors import Actor, authenticate
from engine.errors import Unauthenticated

router = Router(tags=["dashboard"])
Filter = Annotated[str | None, Query(max_length=64)]
Days = Annotated[int, Query(ge=1, le=366, description="统计周期 (天)")]


def _actor(request: Request, session: SessionDep, credentials: BearerDep) -> Actor:
    """The page's cookie session, or a bearer token for integrations."""
    if credentials is not None:
        return authenticate(session, credentials.credentials.strip())
    actor = web.current_actor(request, session)
    if actor is None:
        raise Unauthenticated("缺少登录会话或 Authorization: Bearer 令牌")
    return actor


@router.get("/api/v1/dashboard", response_model=Dashboard, responses=problems(401, 403))
def get_dashboard(request: Request, session: SessionDep, region: Filter = None, counter: Filter = None,
                   item: Filter = None, days: Days = 30,
                   credentials: BearerDep = None) -> Any:

    """督查看板数据

    督查看板数据: only the regions the supervisor watches; a region or counter outside them is 403."""
    actor = _actor(request, session, credentials)
    data = dashboard.dashboard(session, actor, region=region or None, counter=counter or None,
                               item=item or None, days=days)
    # Plain JSON values only: skip the generic encoder's walk; polled every few seconds.
    return JSONResponse(data, headers={"Cache-Control": "private, no-store"})
