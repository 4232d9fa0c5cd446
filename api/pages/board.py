"""The supervisor dashboard: a page that polls one JSON data endpoint scoped to the supervisor's regions."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import SessionDep, UnitRoute, require_role
from api.pages import web
from engine import catalog, dashboard
from engine.actors import Actor, authenticate
from engine.errors import Unauthenticated
from storage.tables import Region

router = APIRouter(route_class=UnitRoute)
Filter = Annotated[str | None, Query(max_length=64)]
Days = Annotated[int, Query(ge=1, le=366, description="统计周期 (天)")]


@router.get("/ui/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page(request: Request, session: SessionDep, region: Filter = None, counter: Filter = None,
                   item: Filter = None, days: Days = 30) -> Response:
    actor = web.require_actor(request, session)
    require_role(actor, "supervisor")
    counters = dashboard.visible_counters(session, actor)
    regions = session.execute(sa.select(Region.code, Region.name).where(
        Region.code.in_(dashboard.supervised_regions(session, actor))).order_by(Region.code)).all()
    items = catalog.list_items(session)
    names = {"regions": {code: name for code, name in regions}, "counters": counters,
             "items": {it["code"]: it["name"] for it in items}}
    return web.render(request, "dashboard.html", actor, counters=counters, regions=regions,
                      items=items, names=names,
                      f={"region": region or "", "counter": counter or "", "item": item or "", "days": days})


def _actor(request: Request, session: SessionDep, authorization: str | None) -> Actor:
    """The page's cookie session, or a bearer token for integrations."""
    if authorization and authorization.lower().startswith("bearer "):
        return authenticate(session, authorization[7:].strip())
    actor = web.current_actor(request, session)
    if actor is None:
        raise Unauthenticated("缺少登录会话或 Authorization: Bearer 令牌")
    return actor


@router.get("/api/v1/dashboard", tags=["dashboard"])
def dashboard_data(request: Request, session: SessionDep, region: Filter = None, counter: Filter = None,
                   item: Filter = None, days: Days = 30,
                   authorization: Annotated[str | None, Header()] = None) -> Any:
    """督查看板数据: only the regions the supervisor watches; a region or counter outside them is 403."""
    actor = _actor(request, session, authorization)
    data = dashboard.dashboard(session, actor, region=region or None, counter=counter or None,
                               item=item or None, days=days)
    # Plain JSON values only: skip the generic encoder's walk; polled every few seconds.
    return JSONResponse(data, headers={"Cache-Control": "private, no-store"})
