"""办件数据交换 for provincial platforms: the incremental case export (engine.exchange)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Query, Request, Response

from api.deps import ActorDep, SessionDep
from api.models import ExchangePage
from api.routing import Router
from engine import exchange

router = Router(prefix="/api/v1/exchange", tags=["exchange"])

CSV_TYPE = "text/csv; charset=utf-8"
AFTER = "续传游标: 上次的 next_cursor 或某条记录的 cursor; 不填从头导出"
LINK = {"Link": {"description": '本页已满时给出: <…?after=next_cursor…>; rel="next"', "schema": {"type": "string"}}}


@router.get("/cases", response_model=ExchangePage, responses={200: {
    "description": "变更游标之后的办件 (JSON: 列表; CSV: 每件一行, 表头为「中文名(字段)」)",
    "headers": LINK,
    "content": {"text/csv": {"schema": {"type": "string"}}},
}})
def export_cases(
    request: Request, response: Response, session: SessionDep, actor: ActorDep,
    after: Annotated[str | None, Query(pattern=exchange.CURSOR_PATTERN, max_length=40, description=AFTER)] = None,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format", description="json 或 csv")] = "json",
    limit: Annotated[int, Query(ge=1, le=exchange.MAX_LIMIT, description="每页件数")] = 100,
) -> Any:
    """导出办件数据 (GB/T 39046-2020 数据项), 按变更游标增量续传。

    供省级政务服务平台等对接系统使用: 数据交换账号 (exchange 角色) 得到全部办件及申请人证件号码、
    联系电话、通讯地址; 督查人员只得到其督查区域的办件, 不含申请人个人信息。办件在游标之后有任何变更
    都会再次出现。每次导出都记入导出日志 (谁、何时、哪些办件、是否含个人信息)。字段逐项说明见
    docs/api/exchange.md。
    """
    cursor = exchange.parse_cursor(after)
    page = exchange.export_page(session, actor, cursor, limit)
    exchange.record_export(session, actor, page, channel="api", fmt=fmt, after=cursor)
    headers = {}
    if page.full:  # more may follow at once; a page that is not full means: come back later
        query = urlencode({"after": str(page.next_cursor), "format": fmt, "limit": limit})
        headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    if fmt == "csv":
        return Response(exchange.to_csv(page.items).encode("utf-8"), media_type=CSV_TYPE, headers=headers)
    response.headers.update(headers)
    return {"items": page.items, "next_cursor": str(page.next_cursor)}
