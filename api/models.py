"""Answers of the API, as types: what the OpenAPI document promises and a generated client reads.

The engine's read models (``engine.views``, ``engine.progress``, ``engine.catalog``) are plain
dicts, built once; routes that answer them as they are (the case, encoded by orjson on the hot
path) name the model here only for the document, and schemathesis checks every answer against
it in the test suite (tests/test_api_fuzz.py), so the two cannot drift apart unseen.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["全程网办", "异地代收代办", "多地联办"]
MaterialStatus = Literal["missing", "received", "deferred"]
DeadlineStatus = Literal["正常", "预警", "逾期"]


class StatusCode(IntEnum):
    """办件状态 (national 办件 status codes): 1 已接件 … 15 撤销."""

    RECEIVED = 1
    CANCELLED = 2
    ACCEPTED = 3
    NOT_ACCEPTED = 4
    REFUSED = 5
    SUPPLEMENT_STARTED = 6
    SUPPLEMENT_ENDED = 7
    HANDLING = 8
    SPECIAL_STARTED = 9
    SPECIAL_ENDED = 10
    APPROVED = 11
    APPROVED_DEFERRED = 12
    DENIED = 13
    WITHDRAWN = 14
    REVOKED = 15


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemRef(_Out):
    code: str
    name: str
    version: int


class StateView(_Out):
    id: str = Field(description="状态标识 (事项定义中的 id)")
    label: str = Field(description="状态名称 (中文)")
    final: bool
    clock: Literal["run", "pause"] = Field(description="期限计时: run 计时, pause 暂停 (补正、特别程序)")
    video: str | None = Field(description="此状态的视频环节 (如远程踏勘), 无则为 null")


class BranchView(_Out):
    id: str
    label: str
    counter: str
    state: str
    state_label: str
    done: bool


class Status(_Out):
    code: StatusCode
    label: str


class ApplicantView(_Out):
    kind: Literal["person", "company"] = "person"
    name: str
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None


class MaterialView(_Out):
    id: str
    name: str
    required: bool
    deferrable: bool
    status: MaterialStatus
    promise: str | None
    deferred_due: date | None


class Deadlines(_Out):
    supplement_notice: date | None = Field(description="一次性告知补正的期限 (受理前)")
    accepted_at: datetime | None
    promised: date | None = Field(description="承诺办结期限")
    legal: date | None = Field(description="法定办结期限")
    certificate: date | None = Field(description="出证期限 (决定后)")
    extended_days: int
    provisional: bool = Field(description="期限按暂定日历计算 (该年节假日尚未发布)")
    status: DeadlineStatus | None
    paused_since: datetime | None
    paused_days: int


class TriggerView(_Out):
    trigger: str
    label: str
    to: str
    open: bool = Field(description="调用者此刻能否执行")
    reasons: list[str] = Field(description="不能执行的原因 (中文)")
    comment_required: bool


class Case(_Out):
    """A case as the calling clerk sees it (ETag: its version)."""

    model_config = ConfigDict(extra="forbid", title="Case")

    number: str = Field(description="办件编号", examples=["370100-20261202-0001"])
    item: ItemRef
    mode: Mode | None
    state: StateView
    branches: list[BranchView]
    status: Status
    intake_counter: str
    competent_counter: str
    parties: dict[str, str] = Field(description="窗口角色 → 窗口标识")
    holders: list[str] = Field(description="此刻持有案件的窗口")
    companion_id: int | None = Field(description="一事一人: 陪办人员")
    assignees: dict[str, int] = Field(description="窗口 → 认领本步骤的人员")
    applicant: ApplicantView
    commitment: dict[str, Any] | None = Field(description="告知承诺: 签署人、时间、内容")
    materials: list[MaterialView]
    deadlines: Deadlines
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    version: int
    triggers: list[TriggerView] = Field(description="离开当前状态的全部操作, 可否执行及原因")


class CreatedCase(Case):
    """The new case, with its query code (shown to the applicant once; stored only as a hash)."""

    model_config = ConfigDict(extra="forbid", title="CreatedCase")

    query_code: str = Field(description="查询码: 申请人凭办件编号和查询码查询进度")


class QueueEntry(_Out):
    number: str
    item_code: str
    item_name: str
    state: str
    status: str
    promised_due: date | None
    legal_due: date | None
    supplement_notice_due: date | None
    provisional: bool
    overdue: bool
    assignee: int | None
    companion_id: int | None
    version: int


class Queue(_Out):
    items: list[QueueEntry]
    next_cursor: str | None = Field(description="下一页的游标, 无更多则为 null")


class HistoryEvent(_Out):
    seq: int
    at: datetime
    kind: str
    actor_id: int | None
    actor_name: str
    counter_id: str | None
    trigger: str | None
    from_state: str | None
    to_state: str | None
    comment: str | None
    data: dict[str, Any] | None
    prev_hash: str | None
    hash: str


class History(_Out):
    number: str
    events: list[HistoryEvent]


class ProgressStep(_Out):
    at: datetime
    label: str


class Progress(_Out):
    """办件进度 as the applicant sees it: no personal data."""

    number: str
    item_name: str
    status: str
    state: str
    received_at: datetime
    promised_due: date | None
    provisional: bool
    finished_at: datetime | None
    can_withdraw: bool
    steps: list[ProgressStep]


class ItemSummary(_Out):
    code: str
    name: str
    latest_version: int


class ItemList(_Out):
    items: list[ItemSummary]


class ItemDefinition(_Out):
    code: str
    version: int
    content_hash: str
    published_at: datetime
    definition: dict[str, Any] = Field(description="事项定义 (与 YAML 同构)")


class Published(_Out):
    code: str
    version: int
    content_hash: str
    created: bool = Field(description="false: 内容与已有版本相同, 未新建版本")


class Health(_Out):
    status: Literal["ok"]


# Binary and text answers: their real media types, for ``responses=``.
def binary(*media_types: str, description: str = "文件内容") -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {
        t: {"schema": {"type": "string", "format": "binary"}} for t in media_types}}}


# --- the event feed and webhooks (engine.events, engine.webhooks) ---------------------------------

class Event(_Out):
    """One committed history event, as the feed lists it and a webhook delivers it."""

    model_config = ConfigDict(extra="forbid", title="Event")

    id: str = Field(description="事件标识, 稳定不变, 可作幂等键 (办件编号-序号)", examples=["310115202612020001-3"])
    cursor: str = Field(description="此事件在事件流中的位置: 作 after 参数, 从它之后继续读")
    case: str = Field(description="办件编号")
    seq: int = Field(description="此事件在办件内的序号, 即事件后的案件版本 (ETag)")
    item: str = Field(description="事项编码")
    kind: str = Field(description="事件类型: intake 收件, transition 流转, material 材料, "
                                  "claim/release/assign 认领与转交, …")
    trigger: str | None = Field(description="流转的操作 (kind 为 transition 时)")
    from_state: str | None
    to_state: str | None
    counter: str | None = Field(description="事件发生的窗口 (系统自动执行时为 null)")
    at: datetime = Field(description="事件时间 (RFC 3339, 含时区偏移)")


class EventPage(_Out):
    items: list[Event]
    next_cursor: str = Field(description="下次读取的 after 参数; 事件流没有尽头, 此值总会给出 "
                                         "(无新事件时与 after 相同)")


class Webhook(_Out):
    """An event subscription (never its secret)."""

    id: int
    url: str
    region: str | None = Field(description="只推送涉及此行政区划窗口的办件事件")
    counter: str | None = Field(description="只推送此窗口参与的办件事件")
    item: str | None = Field(description="只推送此事项的事件")
    kind: str | None = Field(description="只推送此类型的事件")
    created_at: datetime
    delivered_through: str = Field(description="已确认送达 (2xx) 到的事件流位置")
    failures: int = Field(description="当前事件连续失败的次数")
    next_attempt_at: datetime | None = Field(description="退避中: 下次尝试的时间")
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="上次尝试时接收方答复的 HTTP 状态码")
    last_error: str | None


class CreatedWebhook(Webhook):
    model_config = ConfigDict(extra="forbid", title="CreatedWebhook")

    secret: str | None = Field(description="生成的签名密钥, 仅在此显示一次; 调用方自带密钥时为 null")


class WebhookList(_Out):
    items: list[Webhook]
    next_cursor: str | None = Field(description="下一页的游标, 无更多则为 null")


class WebhookDelivery(_Out):
    id: int
    event_id: str
    cursor: str = Field(description="事件在事件流中的位置")
    attempt: int = Field(description="此事件的第几次尝试")
    at: datetime
    status_code: int | None = Field(description="接收方答复的 HTTP 状态码; 未得到答复 (拒绝连接、超时) 时为 null")
    error: str | None = Field(description="失败原因; 成功 (2xx) 时为 null")
    duration_ms: int


class WebhookDeliveryList(_Out):
    items: list[WebhookDelivery]
    next_cursor: str | None = Field(description="更早记录的游标, 无更多则为 null")
