"""事件流: every committed history event, for integrators, as far as the caller's scopes reach."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request, Response

from api.deps import ActorDep, SessionDep
from api.models import EventPage
from api.routing import Router
from core import wire
from engine import events

router = Router(prefix="/api/v1/events", tags=["events"])
Filter = Annotated[str | None, Query(max_length=64)]
Cursor = Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]{1,18}$",
                                     description="上次答复的 next_cursor (或某事件的 cursor); 不填则从头读起")]
Limit = Annotated[int, Query(ge=1, le=500)]
LINK_HEADER = {"Link": {"description": '下一页的地址: <…>; rel="next"', "schema": {"type": "string"}}}


def json_answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Encoded as the case answers are (``core.wire``): every instant in the product's zone."""
    return Response(wire.dumps(data), status_code=status, media_type="application/json", headers=headers)


def next_link(request: Request, param: str, cursor: str) -> str:
    """``Link: <path?…>; rel="next"``: the same query with the cursor moved on."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != param] + [(param, cursor)]
    return f'<{request.url.path}?{urlencode(query)}>; rel="next"'


@router.get("", response_model=EventPage, responses={200: {"headers": LINK_HEADER}})
def list_events(request: Request, session: SessionDep, actor: ActorDep, after: Cursor = None,
                region: Filter = None, counter: Filter = None, item: Filter = None, kind: Filter = None,
                limit: Limit = 100) -> Response:
    """读取事件流: 每个已提交的办件事件, 按提交顺序, 可从游标续读

    只列出调用者可见的办件 (本窗口参与的办件; 督查人员: 所督查区域的办件)。
    `region`、`counter` 按办件涉及的窗口筛选, `item` 按事项, `kind` 按事件类型。
    游标只会向前: 已读到的位置之前不会再出现新事件, 所以保存 `next_cursor` 续读不会漏读。
    事件流没有尽头: 没有新事件时 `items` 为空, `next_cursor` 不变; 稍后再以它续读。
    """
    filters = events.Filters(region=region or None, counter=counter or None, item=item or None, kind=kind or None)
    page = events.feed(session, actor, after, filters, limit)
    return json_answer(page, headers={"Link": next_link(request, "after", page["next_cursor"]),
                                      "Cache-Control": "private, no-store"})
