"""The counter's queue page: open and finished cases of a counter, sortable, filterable, searchable."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.pages import web
from api.routing import Router
from engine import catalog, dashboard, directory, search, views
from engine.errors import Forbidden

router = Router(pages=True)
PAGE = 50
SEARCH_POOL = 4 * PAGE  # matches a search on the page filters (engine.search ranks them first)
Short = Annotated[str | None, Query(max_length=64)]


@router.get("/ui/queue", response_class=HTMLResponse)
def queue_page(request: Request, session: SessionDep, counter: Short = None, item: Short = None,
               state: Short = None, deadline: Short = None, claim: Short = None,
               q: Annotated[str | None, Query(max_length=search.MAX_QUERY)] = None,
               tab: Literal["open", "finished"] = "open", sort: Short = None, desc: bool = False,
               offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> Response:
    actor = web.require_actor(request, session)
    counters = dashboard.visible_counters(session, actor)
    counter = counter or actor.counter_id or next(iter(counters), None)
    if counter is None:
        raise Forbidden("您没有可查看的窗口", missing=["counter"])
    if counter != actor.counter_id and "supervisor" not in actor.roles:
        raise Forbidden("只能查看本窗口的队列", missing=["role:supervisor"])
    dashboard.check_counter_visible(session, actor, counter)
    item, state, deadline, claim = item or None, state or None, deadline or None, claim or None
    search.check_filters(session, state=state, item=item)
    finished = tab == "finished"
    if q and q.strip():
        # The filters on screen narrow the matches too (they were shown and ignored): taken from
        # the best matches, several pages' worth, as the search ranks them.
        views.check_queue_filters(deadline, claim)
        found = search.search(session, actor, q, finished=finished or None, limit=SEARCH_POOL, page=True)
        hits = views.filter_entries(found["items"], actor, item=item, state=state, deadline=deadline, claim=claim)
        page: dict[str, Any] = {"items": hits[:PAGE], "more": False, "total": len(hits[:PAGE])}
    else:
        page = views.workbench_queue(session, actor, counter, finished=finished, item=item, state=state,
                                     deadline=deadline, claim=claim, sort=sort or "received",
                                     descending=desc, offset=offset, limit=PAGE)
    ids = [c for it in page["items"] for c in (it["assignee"], it["companion_id"])]
    names = directory.clerk_names(session, ids)
    items = catalog.list_items(session)
    states = []
    if item:
        d = catalog.compiled(session, catalog.latest_version(session, item).id).definition
        states = [(s.id, s.label) for s in d.states if s.final == finished or not finished]
    params = {"counter": counter if counter != actor.counter_id else None, "tab": tab if finished else None,
              "item": item, "state": state, "deadline": deadline, "claim": claim, "q": (q or "").strip() or None}

    def link(**change: Any) -> str:
        merged = {k: v for k, v in {**params, **change}.items() if v not in (None, "", False, 0)}
        return "/ui/queue" + ("?" + urlencode(merged) if merged else "")

    searching = bool(q and q.strip())
    # What the rows are ordered by decides the headers: only the open list sorts by a column.
    columns = ("found_finished" if finished else "found") if searching else "finished" if finished else "open"
    return web.render(request, "queue.html", actor, counter=counter, columns=columns,
                      unclaimed_first=views.unclaimed_first(actor), counters=counters,
                      counter_name=directory.counter_names(session, [counter]).get(counter, "本窗口"),
                      page=page, names=names, items=items, states=states, tab=tab, q=(q or "").strip(),
                      filters={"item": item or "", "state": state or "", "deadline": deadline or "",
                               "claim": claim or ""},
                      sort=sort or "received", desc=desc, offset=offset, page_size=PAGE, link=link,
                      sorts=views.QUEUE_SORTS, deadlines=views.DEADLINE_FILTERS, claims=views.CLAIM_FILTERS)
