"""The supervisor dashboard page; it polls ``GET /api/v1/dashboard`` (``api.routes.dashboard``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep, require_role
from api.pages import web
from api.routing import Router
from engine import catalog, dashboard, directory

router = Router(pages=True)
Filter = Annotated[str | None, Query(max_length=64)]
Days = Annotated[int, Query(ge=1, le=366, description="统计周期 (天)")]


@router.get("/ui/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, session: SessionDep, region: Filter = None, counter: Filter = None,
                   item: Filter = None, days: Days = 30) -> Response:
    actor = web.require_actor(request, session)
    require_role(actor, "supervisor")
    counters = dashboard.visible_counters(session, actor)
    regions = directory.regions(session, dashboard.supervised_regions(session, actor))
    items = catalog.list_items(session)
    names = {"regions": {code: name for code, name in regions}, "counters": counters,
             "items": {it["code"]: it["name"] for it in items}}
    return web.render(request, "dashboard.html", actor, counters=counters, regions=regions,
                      items=items, names=names,
                      f={"region": region or "", "counter": counter or "", "item": item or "", "days": days})

