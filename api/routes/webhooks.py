"""事件订阅 (webhooks): the feed's events POSTed to an integrator's address, signed, at least once, in order."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.models import CreatedWebhook, Webhook, WebhookDeliveryList, WebhookList
from api.routes.events import LINK_HEADER, json_answer, next_link
from api.routing import Router
from engine import events, webhooks

router = Router(prefix="/api/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[int, Path(ge=1, le=2**31 - 1, description="订阅标识")]
ListCursor = Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]{1,18}$", description="上次答复的 next_cursor")]
Limit = Annotated[int, Query(ge=1, le=200)]
FilterText = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(min_length=10, max_length=2000, pattern=r"^https?://")] = Field(
        description="接收事件的地址: http:// 或 https://, 不含用户名密码", examples=["https://exchange.example.gov.cn/tongban/events"])
    region: FilterText | None = Field(default=None, description="只推送涉及此行政区划窗口的办件事件")
    counter: FilterText | None = Field(default=None, description="只推送此窗口参与的办件事件")
    item: FilterText | None = Field(default=None, description="只推送此事项的事件")
    kind: FilterText | None = Field(default=None, description="只推送此类型的事件 (intake, transition, …)")
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200, pattern=r"^[!-~]+$")] | None = Field(
        default=None, description="签名密钥 (16–200 个可见 ASCII 字符); 不填则生成一个, 在答复中显示一次")
    start: Literal["now", "beginning"] = Field(
        default="now", description="now: 只推送此后的事件; beginning: 从事件流开头推送调用者可见的全部事件")


@router.post("", status_code=201, response_model=CreatedWebhook, responses={
    **problems(409), 201: {"headers": {"Location": {"description": "新订阅的地址", "schema": {"type": "string"}}}}})
def create_webhook(body: WebhookCreate, session: SessionDep, actor: ActorDep) -> Response:
    """创建事件订阅: 把调用者可见、符合筛选条件的事件逐个推送到指定地址

    每个事件一次 POST (JSON, 与事件流中的一项相同), 按事件流顺序, 至少送达一次: 接收方答复 2xx 才算送达,
    否则按指数退避重试, 不会放弃。请求头 `Idempotency-Key` / `X-Tongban-Event-Id` 为事件标识 (据此去重),
    `X-Tongban-Signature: sha256=HMAC-SHA256(密钥, X-Tongban-Timestamp + "." + 请求体)`。
    """
    filters = events.Filters(region=body.region, counter=body.counter, item=body.item, kind=body.kind)
    hook, secret = webhooks.create(session, actor, body.url, filters, body.secret, body.start)
    return json_answer(hook | {"secret": secret}, 201, {"Location": f"/api/v1/webhooks/{hook['id']}"})


@router.get("", response_model=WebhookList, responses={200: {"headers": LINK_HEADER}})
def list_webhooks(request: Request, session: SessionDep, actor: ActorDep, cursor: ListCursor = None,
                  limit: Limit = 50) -> Response:
    """列出本人的事件订阅"""
    page = webhooks.listing(session, actor, cursor, limit)
    headers = {"Link": next_link(request, "cursor", page["next_cursor"])} if page["next_cursor"] else None
    return json_answer(page, headers=headers)


@router.get("/{webhook_id}", response_model=Webhook)
def get_webhook(webhook_id: WebhookId, session: SessionDep, actor: ActorDep) -> Response:
    """查看一个事件订阅: 送达进度、连续失败次数、下次重试时间"""
    return json_answer(webhooks.view(webhooks.get(session, actor, webhook_id)))


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
def delete_webhook(webhook_id: WebhookId, session: SessionDep, actor: ActorDep) -> Response:
    """删除事件订阅: 不再推送"""
    webhooks.delete(session, actor, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=WebhookDeliveryList,
            responses={200: {"headers": LINK_HEADER}})
def list_webhook_deliveries(request: Request, webhook_id: WebhookId, session: SessionDep, actor: ActorDep,
                            cursor: ListCursor = None, limit: Limit = 50) -> Response:
    """查看推送记录: 每次尝试的时间、接收方的状态码或失败原因, 最新的在前"""
    page = webhooks.deliveries(session, actor, webhook_id, cursor, limit)
    headers = {"Link": next_link(request, "cursor", page["next_cursor"])} if page["next_cursor"] else None
    return json_answer(page, headers=headers)
