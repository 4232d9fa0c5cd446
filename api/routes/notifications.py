"""Notifications that did not go out, for the supervisors of the regions they concern: the list,
and sending one again. Thin: the rules are in ``engine.notify_failed``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.models import Instant
from api.routes.events import LINK_HEADER, json_answer, next_link
from api.routing import Router
from engine import notify_failed

router = Router(prefix="/api/v1", tags=["notifications"])
RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="通知编号")]


class FailedNotification(BaseModel):
    """A message that failed or had nowhere to go (its address masked)."""

    model_config = ConfigDict(extra="forbid", title="FailedNotification")
    id: int
    case_number: str | None = Field(description="办件编号; 预约、窗口评价的通知为 null")
    kind: str
    kind_label: str
    audience: Literal["applicant", "supervisor"]
    channel: Literal["sms", "email"] | None = Field(description="sms 短信, email 邮件; 尚未确定地址时为 null")
    channel_label: str
    address: str | None = Field(description="地址, 部分隐藏 (138****0000, d***@example.cn)")
    status: Literal["pending", "sent", "failed", "unrouted", "expired"]
    status_label: str
    attempts: int
    last_error: str | None
    created_at: Instant
    last_attempt_at: Instant | None
    counters: list[str] = Field(description="通知涉及的窗口")
    regions: list[str] = Field(description="这些窗口所在的行政区划")


class FailedNotificationList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[FailedNotification]
    next_cursor: str | None = Field(
        description="下一页的游标 (作 cursor 参数), 没有更多时为 null; 答复另有 Link: rel=\"next\"")


@router.get("/notifications/failed", response_model=FailedNotificationList,
            responses={**problems(403), 200: {"headers": LINK_HEADER}})
def list_failed(request: Request, session: SessionDep, actor: ActorDep,
                cursor: Annotated[str | None, Query(max_length=10, pattern=r"^[0-9]{1,10}$",
                                                    description="上一页的 next_cursor (通知编号)")] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    """发送失败的通知

    发送失败或无可用地址的通知, 仅限督查人员所督查区域的窗口, 最早的在前; 还有更多时
    `next_cursor` 给出下一页的起点 (亦见 Link)。"""
    items = notify_failed.failed_for(session, actor, limit + 1, int(cursor or 0))
    more = len(items) > limit
    items = items[:limit]
    page = {"items": items, "next_cursor": str(items[-1]["id"]) if more else None}
    return json_answer(page, headers={"Link": next_link(request, "cursor", page["next_cursor"])} if more else None)


@router.post("/notifications/{notification_id:int}/retry", response_model=FailedNotification,
             responses=problems(403, 404, 409))
def retry(notification_id: RowId, session: SessionDep, actor: ActorDep) -> Any:
    """重新发送通知

    把一条发送失败或无可用地址的通知重新排入待发 (次数清零, 重新确定地址); 仅限所督查区域的督查人员。"""
    return notify_failed.retry(session, notification_id, actor)

