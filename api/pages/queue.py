"""The counter's queue page: open and finished cases of a counter, searchable."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.pages import web
from api.routing import Router
from engine import catalog, dashboard, directory, views
from engine.errors import Forbidden

router = Router(pages=True)


@router.get("/ui/queue", response_class=HTMLResponse)
def queue_page(request: Request, session: SessionDep, counter: str | None = None,
               item: Annotated[str | None, Query(max_length=64)] = None,
               cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    actor = web.require_actor(request, session)
    counters = dashboard.visible_counters(session, actor)
    counter = counter or actor.counter_id or next(iter(counters), None)
    if counter is None:
        raise Forbidden("您没有可查看的窗口", missing=["counter"])
    if counter != actor.counter_id and "supervisor" not in actor.roles:
        raise Forbidden("只能查看本窗口的队列", missing=["role:supervisor"])
    dashboard.check_counter_visible(session, actor, counter)
    page = views.queue(session, counter, item=item or None, cursor=cursor, limit=50)
    names = directory.clerk_names(session, [c for it in page["items"] for c in (it["assignee"], it["companion_id"])])
    return web.render(request, "queue.html", actor, counter=counter, counters=counters,
                      counter_name=directory.counter_names(session, [counter]).get(counter, counter),
                      page=page, names=names, item=item or "", items=catalog.list_items(session))
