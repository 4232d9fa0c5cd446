"""Answers of the API, as types: what the OpenAPI document promises and a generated client reads.

The engine's read models (``engine.views``, ``engine.progress``, ``engine.catalog``) are plain
dicts, built once; routes that answer them as they are (the case, encoded by orjson on the hot
path) name the model here only for the document, and schemathesis checks every answer against
it in the test suite (tests/test_api_fuzz.py), so the two cannot drift apart unseen.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, PlainSerializer, WithJsonSchema

from api.enums import DeadlineStatus, MaterialStatus, Mode, ParticipantRole, WaybillStatus
from core import wire
from engine.views import STATUS_LABELS


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

    @classmethod
    def __get_pydantic_json_schema__(cls, core: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        """The members' names and labels beside the codes: generated clients name them
        (``StatusCode.RECEIVED``, not ``VALUE_1``; openapi-python-client, openapi-typescript)."""
        schema = handler.resolve_ref_schema(handler(core))
        schema["x-enum-varnames"] = [m.name for m in cls]
        schema["x-enum-descriptions"] = [STATUS_LABELS[m.value] for m in cls]
        return schema


# An instant as every answer writes it (``core.wire``): RFC 3339 in the product's zone (+08:00).
Instant = Annotated[datetime, PlainSerializer(wire.instant, when_used="json"),
                    WithJsonSchema({"type": "string", "format": "date-time"})]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _cursor(description: str = "下一页的游标 (作 cursor 参数), 没有更多时为 null; 答复另有 Link: rel=\"next\"") -> Any:
    return Field(description=description)  # required: a generated client gets no "unset"


# Every list answers the same envelope: ``items`` and ``next_cursor`` (null on the last page). A
# list that is short by nature (a case's pages, its certificates) answers it too, with null.


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


class AgentView(_Out):
    name: str
    id_type: str | None = None
    id_number: str | None = None
    phone: str | None = None


class ApplicantView(_Out):
    kind: Literal["person", "company"] = "person"
    name: str
    id_type: str | None = None
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None
    agent: AgentView | None = Field(default=None, description="代理人/经办人")


class LibraryLink(_Out):
    """免提交: the certificate from the library (电子证照库) that stands in for a material's scan."""

    certificate: str = Field(description="证照编号")
    title: str
    issuer: str = Field(description="颁发机构")
    type: str = Field(description="证照类型")


class MaterialView(_Out):
    id: str
    name: str
    required: bool
    deferrable: bool
    status: MaterialStatus
    promise: str | None
    deferred_due: date | None
    library: LibraryLink | None = Field(default=None, description="免提交: 取自电子证照库的证照")


class SituationAnswer(_Out):
    """One 事项情形 question and the applicant's answer, as intake recorded it."""

    id: str = Field(description="问题标识 (事项定义中的 situations[].id)")
    question: str
    answer: str = Field(description="所选选项的标识")
    label: str = Field(description="所选选项的名称")


class Deadlines(_Out):
    supplement_notice: date | None = Field(description="一次性告知补正的期限 (受理前)")
    accepted_at: Instant | None
    promised: date | None = Field(description="承诺办结期限")
    legal: date | None = Field(description="法定办结期限")
    certificate: date | None = Field(description="出证期限 (决定后)")
    extended_days: int
    provisional: bool = Field(description="期限按暂定日历计算 (该年节假日尚未发布)")
    status: DeadlineStatus | None
    paused_since: Instant | None
    paused_days: int


class CertificateFieldInput(_Out):
    id: str
    label: str
    required: bool
    validation: Literal["text", "credit_code", "id_number", "date"]
    max_length: int
    certificate: str = Field(description="所属证照名称")


class TriggerView(_Out):
    trigger: str
    label: str
    to: str
    open: bool = Field(description="调用者此刻能否执行")
    reasons: list[str] = Field(description="不能执行的原因 (中文)")
    comment_required: bool
    certificate_fields: list[CertificateFieldInput] = Field(
        default=[], description="审批时须填写的证照字段 (放入 data.certificate.<id>)")


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
    holders: list[str] = Field(description="此刻持有办件的窗口")
    companion_id: int | None = Field(description="一事一人: 陪办人员")
    assignees: dict[str, int] = Field(description="窗口 → 认领本步骤的人员")
    applicant: ApplicantView
    commitment: dict[str, Any] | None = Field(description="告知承诺: 签署人、时间、内容")
    materials: list[MaterialView]
    situation: list[SituationAnswer] = Field(description="事项情形: 受理时记录的问题与回答; 事项无情形时为空")
    deadlines: Deadlines
    created_at: Instant
    updated_at: Instant
    finished_at: Instant | None
    version: int
    triggers: list[TriggerView] = Field(description="离开当前状态的全部操作, 可否执行及原因")


class CreatedCase(Case):
    """The new case, with its query code (shown to the applicant once; stored only as a hash)."""

    model_config = ConfigDict(extra="forbid", title="CreatedCase")

    query_code: str = Field(description="查询码: 申请人凭办件编号和查询码查询进度")


class StateRef(_Out):
    """A state as lists show it (the case itself answers the whole ``StateView``)."""

    id: str = Field(description="状态标识 (事项定义中的 id)")
    label: str = Field(description="事项自己的状态名称 (审核、证照已制发 …)")


class QueueEntry(_Out):
    number: str
    item_code: str
    item_name: str
    state: StateRef
    status: Status
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
    next_cursor: str | None = _cursor()


class HistoryEvent(_Out):
    seq: int
    at: Instant
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
    items: list[HistoryEvent]
    next_cursor: str | None = _cursor()


class ProgressStep(_Out):
    at: Instant
    label: str


class Progress(_Out):
    """办件进度 as the applicant sees it: no personal data."""

    number: str
    item_name: str
    status: Status
    state: StateRef
    received_at: Instant
    promised_due: date | None
    provisional: bool
    finished_at: Instant | None
    can_withdraw: bool
    steps: list[ProgressStep]


class ItemSummary(_Out):
    code: str
    name: str
    latest_version: int


class ItemList(_Out):
    items: list[ItemSummary]
    next_cursor: str | None = _cursor()


class ItemDefinition(_Out):
    code: str
    version: int
    content_hash: str
    published_at: Instant
    definition: dict[str, Any] = Field(description="事项定义 (与 YAML 同构)")


class Published(_Out):
    code: str
    version: int
    content_hash: str
    created: bool = Field(description="false: 内容与已有版本相同, 未新建版本")


class Health(_Out):
    status: Literal["ok"]


class Page(_Out):
    """A scanned page (扫描页) of a material slot."""

    id: int
    material_id: str
    page_no: int = Field(description="在该材料中的页序 (从 1 起, 不计已撤回的页)")
    sha256: str
    size: int
    media_type: str
    original_name: str | None
    width: int | None
    height: int | None
    pages: int | None = Field(description="PDF 的页数")
    uploaded_by: int | None
    uploaded_by_name: str
    counter_id: str | None
    uploaded_at: Instant
    withdrawn_at: Instant | None
    withdrawn_by: int | None
    content_url: str
    thumbnail_url: str | None


class PageList(_Out):
    items: list[Page]
    next_cursor: str | None = _cursor()


class EvidenceItem(_Out):
    """A retained object of a case (证照、录像), kept under object lock."""

    id: int
    kind: str
    sha256: str
    size: int
    media_type: str
    version_id: str | None
    retain_until: Instant | None
    stored_by: int | None
    stored_by_name: str
    counter_id: str | None
    stored_at: Instant
    meta: dict[str, Any] | None
    content_url: str


class EvidenceList(_Out):
    items: list[EvidenceItem]
    next_cursor: str | None = _cursor()


class Presigned(_Out):
    """307: the object store's short-lived address for the bytes (S3); ``Location`` says it too."""

    url: str
    expires_in: int
    sha256: str
    media_type: str


class Certificate(_Out):
    number: str
    title: str
    issued_at: Instant
    valid_until: date | None
    counter: str
    sha256: str
    revoked: bool
    pdf: str
    verify: str


class CertificateDatum(_Out):
    label: str
    value: str


class LibraryCertificate(_Out):
    """电子证照库的一条证照元数据 (GB/T 36903)."""

    type: str = Field(description="证照类型")
    number: str = Field(description="证照编号")
    title: str = Field(description="证照名称")
    holder: str = Field(description="持证主体")
    holder_code: str = Field(description="持证主体代码")
    holder_code_type: str = Field(description="持证主体代码类型: 统一社会信用代码 / 公民身份号码")
    issuer: str = Field(description="颁发机构")
    issuer_code: str = Field(description="颁发机构代码 (统一社会信用代码)")
    issued_on: date = Field(description="颁发日期 (北京时间)")
    valid_from: date = Field(description="有效期起始日期")
    valid_until: date | None = Field(description="有效期截止日期; null 为长期")
    status: Literal["valid", "expired", "revoked"] = Field(description="状态")
    status_label: str = Field(description="状态 (中文): 有效 / 已过期 / 已撤销")
    item_code: str
    data: list[CertificateDatum] = Field(description="证照记载的信息")
    sha256: str
    pdf: str
    verify: str


class LibraryPage(_Out):
    items: list[LibraryCertificate]
    next_cursor: str | None = Field(description="下一页的游标, 无更多则为 null")


class CertificateList(_Out):
    items: list[Certificate]
    next_cursor: str | None = _cursor()


class TrackingEvent(_Out):
    at: Instant
    status: str
    location: str
    note: str
    source: str


class Waybill(_Out):
    number: str
    carrier: str
    status: WaybillStatus
    status_label: str
    sender_counter: str
    recipient: dict[str, str]
    contents: str
    created_at: Instant
    delivered_at: Instant | None
    label_pdf: str
    events: list[TrackingEvent]


class WaybillList(_Out):
    items: list[Waybill]
    next_cursor: str | None = _cursor()


class TrackingRecorded(_Out):
    """A tracking event taken in (or recognised as one already taken: ``duplicate``)."""

    waybill: str
    status: WaybillStatus
    duplicate: bool
    fired: str | None = Field(default=None, description="签收后执行的办件操作 (如 deliver), 无则为 null")
    waybill_view: Waybill | None = Field(default=None, description="运单的当前情况 (窗口登记时)")


class VideoLink(_Out):
    room: str
    number: str
    role: str
    token: str = Field(description="入会凭证 (签名); url 中已含")
    expires_at: Instant
    url: str = Field(description="入会链接 (发给参会者)")


class RoomClosed(_Out):
    room: str
    status: Literal["closed"]


class ChecklistEntry(_Out):
    id: str
    label: str


class ChecklistResult(ChecklistEntry):
    ok: bool
    note: str | None


class InspectionRecord(_Out):
    """远程踏勘清单的填写结果, 随会议室保存."""

    room: str
    result: Literal["passed", "failed"]
    items: list[ChecklistResult]


class RoomParticipant(_Out):
    id: str
    room_id: str
    role: ParticipantRole
    name: str
    clerk_id: int | None
    joined_at: Instant
    left_at: Instant | None


class RoomRecording(_Out):
    """一位参会者的录像 (另存为办件证据)."""

    id: int
    room_id: str
    participant_id: str
    sha256: str
    size: int
    duration_s: float
    content_type: str
    started_at: Instant
    ended_at: Instant


class Room(_Out):
    """A video room (视频会议室) of a case, bound to the state it was opened in."""

    model_config = ConfigDict(extra="forbid", title="Room")

    id: str
    number: str
    state: str = Field(description="开启时办件所在的状态; 办件离开该状态时会议室自动关闭")
    kind: str = Field(description="视频环节 (远程会商、远程踏勘 …); 临时会商为 adhoc")
    adhoc: bool = Field(description="临时会商: 所在状态未声明视频环节")
    status: Literal["open", "closed"]
    opened_by: int
    counter_id: str
    opened_at: Instant
    closed_at: Instant | None
    close_reason: str | None = Field(description="关闭原因: ended 结束, state_left 办件已离开该状态, idle 闲置")
    checklist: InspectionRecord | None
    participants: list[RoomParticipant]
    recordings: list[RoomRecording]


class RoomList(_Out):
    items: list[Room]
    next_cursor: str | None = _cursor()


class SessionDescription(_Out):
    """WebRTC SDP (完整, 不使用 trickle ICE)."""

    sdp: str
    type: Literal["offer", "answer"]


class LiveParticipant(_Out):
    id: str
    name: str
    role: str
    video: bool
    audio: bool
    feed: int | None = Field(default=None, description="Janus 后端: 此参会者的 VideoRoom 发布者 id")


class MaterialRef(_Out):
    id: str
    name: str


class JanusJoin(_Out):
    """Janus VideoRoom 会议室: 经同源代理 ``path`` 访问 Janus HTTP 接口."""

    path: str
    room: int = Field(description="VideoRoom 房间号")
    token: str = Field(description="本参会者的 VideoRoom 令牌 (仅此参会者可用)")
    publisher: int = Field(description="本参会者发布时使用的 VideoRoom 发布者 id")


class RoomEvents(_Out):
    """会议室消息 (长轮询): 参会者名单、文字交流、文件、拍照请求、会议结束."""

    items: list[dict[str, Any]]
    next: int = Field(description="下次请求的 after")


class MessageReply(_Out):
    reply: dict[str, Any] | None = Field(description="只发给发送者的答复 (校验错误、文件结果), 无则为空")


class IceServer(_Out):
    """一个 RTCIceServer (TURN, TURN REST 临时凭据): 页面的 RTCConfiguration.iceServers 中的一项."""

    urls: list[str]
    username: str = Field(description="<到期 unix 时间>:<会议室>_<角色>")
    credential: str = Field(description="base64(HMAC-SHA1(共享密钥, username)); 有效期不短于入会链接")


class Joined(_Out):
    """加入会议的答复: 服务器的 SDP answer, 及此后各请求须带的参会者密钥."""

    room: str
    number: str
    kind: str
    participant: str
    key: str = Field(description="参会者密钥 (请求头 X-Participant-Key)")
    role: str
    name: str
    answer: SessionDescription | None = Field(description="内置媒体后端的 SDP answer (Janus 后端为空)")
    janus: JanusJoin | None = Field(default=None, description="Janus 后端: 页面向媒体服务器发布与订阅所需的信息")
    participants: list[LiveParticipant]
    materials: list[MaterialRef] = Field(description="可拍照存入的材料")
    checklist: list[ChecklistEntry] = Field(description="此视频环节的清单 (远程踏勘), 无则为空")
    ice_servers: list[IceServer] = Field(
        description="TURN 服务器与临时凭据 (RTCConfiguration.iceServers), 未配置 TURN 时为空")


class Left(_Out):
    room: str
    participant: str
    left: Literal[True]


class InspectionSubmitted(_Out):
    number: str
    state: str = Field(description="提交后办件所在的状态")
    version: int
    trigger: str = Field(description="据清单结果执行的操作 (inspection_passed / inspection_failed)")
    checklist: InspectionRecord


# --- 督查看板 (engine.dashboard) ------------------------------------------------------------------

class DashboardFilters(_Out):
    region: str | None
    counter: str | None
    item: str | None


class OpenBy(_Out):
    """在办件数: 按状态名称、行政区划、窗口 (并联审批的办件在每个持有窗口各计一次)、事项."""

    state: dict[str, int]
    region: dict[str, int]
    counter: dict[str, int]
    item: dict[str, int]


class CounterInfo(_Out):
    name: str
    region: str


class WatchedCase(_Out):
    number: str
    item: str
    state: str = Field(description="状态名称 (中文)")
    counter: str
    region: str
    promised_due: date | None
    deadline: DeadlineStatus
    last_event: Instant
    prefect_url: str | None = Field(description="Prefect 运行记录的地址 (配置了 Prefect 界面时)")


class Stuck(_Out):
    count: int = Field(description="超过设定工作日无进展的在办件总数")
    cases: list[WatchedCase] = Field(description="其中最久未动的若干件")


class DayFigures(_Out):
    day: date
    received: int
    finished: int


class HandoffFigures(_Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_region: str = Field(alias="from", description="移出的行政区划")
    to: str = Field(description="接收的行政区划")
    count: int
    pending: int = Field(description="尚未到达的移交")
    avg_hours: float | None
    max_hours: float | None


class Workload(_Out):
    counter: str
    clerk_id: int | None
    clerk: str
    open: int


class Dashboard(_Out):
    """督查看板: 所督查区域内的队列、期限、吞吐、移交用时和积压."""

    model_config = ConfigDict(extra="forbid", title="Dashboard")

    today: date
    timezone: str
    warn_working_days: int
    stuck_working_days: int
    period_days: int
    filters: DashboardFilters
    open_total: int
    parallel_open: int = Field(description="同时由多个窗口持有的在办件 (并联审批)")
    calendar_missing_years: list[int] = Field(description="尚无官方节假日安排的年份: 其期限为暂定")
    open_by: OpenBy
    counters: dict[str, CounterInfo] = Field(description="窗口标识 → 名称与行政区划")
    deadline: dict[str, int] = Field(description="在办件按期限状态计数: 正常、预警、逾期")
    at_risk: list[WatchedCase] = Field(description="期限最近的在办件 (预警与逾期)")
    stuck: Stuck
    throughput: list[DayFigures]
    handoffs: list[HandoffFigures]
    workloads: list[Workload]


# Binary and text answers: their real media types, for ``responses=``.
def binary(*media_types: str, description: str = "文件内容") -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {
        t: {"schema": {"type": "string", "format": "binary"}} for t in media_types}}}


# --- 办件数据交换 (engine.exchange): GB/T 39046-2020's data items, field by field in docs/api/exchange.md ---

def _instant(what: str) -> Any:
    return Field(description=f"{what} (RFC 3339, 本地时区 +08:00)")


class ExchangeApplication(_Out):
    """办事申请 (GB/T 39046-2020 表5): the case's basic information."""

    case_number: str = Field(description="办件编号")
    implementation_code: str = Field(description="实施编码 (本平台的事项编码)")
    item_name: str = Field(description="事项名称")
    item_version: int = Field(description="事项定义版本")
    item_type_code: str = Field(description="事项类型代码 (附录A.1)", pattern=r"^[0-9]{2}$")
    item_type: str | None = Field(description="事项类型")
    case_type_code: Literal["1", "2", "9"] = Field(description="办件类型代码 (附录A.6): 1 即办件, 2 承诺件")
    case_type: str = Field(description="办件类型")
    applicant_type_code: Literal["1", "2"] = Field(
        description="申请人类型 (附录A.4 服务对象代码): 1 自然人, 2 企业法人")
    applicant_type: str
    applicant_name: str = Field(description="申请者名称 (非数据交换账号: 自然人姓名只留首字)")
    applicant_id_type_code: Literal["111", "990"] | None = Field(
        description="申请者证件类型代码 (GA/T 2000.156): 111 居民身份证, 990 其他 (含统一社会信用代码)")
    applicant_id_type: str | None
    applicant_id_number: str | None = Field(description="申请者证件号码 (仅数据交换账号)")
    contact_phone: str | None = Field(description="联系人手机号码 (仅数据交换账号)")
    address: str | None = Field(description="通讯地址 (仅数据交换账号)")
    source_code: Literal["1", "2"] = Field(description="申报来源代码 (附录A.5 办理形式): 1 窗口办理, 2 电脑端网上办理")
    source: str
    mode_code: Literal["1", "2", "3"] | None = Field(
        description="通办模式代码 (本平台): 1 全程网办, 2 异地代收代办, 3 多地联办")
    mode: Mode | None = Field(description="通办模式")
    applied_at: Instant = _instant("申请时间")
    region_code: str | None = Field(description="行政区划 (申报地: 收件窗口所在地)")
    intake_counter: str
    intake_unit: str | None
    competent_counter: str
    competent_unit: str | None
    competent_region_code: str | None
    status_code: StatusCode = Field(description="办件状态代码 1–15")
    status: str


class ExchangeAcceptance(_Out):
    """事项受理 (表6)."""

    unit_name: str | None = Field(description="受理单位名称")
    unit_credit_code: str | None = Field(description="受理单位统一社会信用代码 (窗口目录未登记, 为 null)")
    clerk: str | None = Field(description="受理人员")
    accepted_at: Instant = _instant("受理时间")
    document_number: str | None = Field(description="受理文书编号 (本平台的受理通知书尚无文号, 为 null)")
    promised_due: date | None = Field(description="承诺办结时间")
    legal_due: date | None = Field(description="法定办结时间 (含延期)")
    case_type_code: Literal["1", "2", "9"]
    case_type: str
    region_code: str | None = Field(description="行政区划 (受理地)")
    counter_id: str | None


class ExchangeStep(_Out):
    """事项办理·办理过程 (表7 1–10): one step per state the case left, and the open one."""

    seq: int | None = Field(description="办件历史序号 (待办环节为 null)")
    step_name: str | None = Field(description="环节名称")
    action: Literal["通过", "退回", "其他"] | None = Field(description="业务动作")
    action_label: str | None = Field(description="所执行的操作")
    handler: str | None = Field(description="环节处理人")
    opinion: str | None = Field(description="环节处理意见")
    started_at: Instant = _instant("环节开始时间")
    ended_at: Instant = Field(description="环节结束时间 (待办: 同开始时间)")
    unit_name: str | None = Field(description="处理单位名称")
    unit_credit_code: str | None
    status_code: Literal["1", "2"] = Field(description="环节办理状态代码: 1 待办, 2 已办")
    status: str
    counter_id: str | None


class ExchangeSpecialProcedure(_Out):
    """特别程序 (表7 11–21)."""

    kind_code: Literal["1", "2"] = Field(description="特别程序种类代码 (附录A.7): 1 延长审批, 2 除延长审批之外的情况")
    kind: str | None = Field(description="特别程序种类名称")
    started_at: Instant = _instant("特别程序开始时间")
    reason: str | None = Field(description="特别程序启动理由或依据")
    applicant: str | None = Field(description="申请人 (提出特别程序的人)")
    ended_at: Instant | None = Field(description="特别程序结束时间 (进行中: null)")
    result: str | None = Field(description="特别程序结果")
    opinion: str | None = Field(description="特别程序办理意见")
    unit_name: str | None = Field(description="办理单位名称")
    unit_credit_code: str | None
    handler: str | None = Field(description="办理人")
    seq: int | None


class ExchangeSupplement(_Out):
    """补正 (扩展数据项: 一次性告知补正与补正完成)."""

    notified_at: Instant = _instant("补正告知时间")
    reason: str | None = Field(description="补正告知内容")
    notified_by: str | None
    unit_name: str | None
    completed_at: Instant | None
    completed_by: str | None


class ExchangeCompletion(_Out):
    """事项办结 (表8)."""

    handler: str | None = Field(description="办理人姓名")
    finished_at: Instant = _instant("办结时间")
    certificate_name: str | None = Field(description="结果证照名称")
    certificate_number: str | None = Field(description="结果证照编号")
    result: str = Field(description="办件结果描述")
    valid_until: date | None = Field(description="证照有效期限 (截止日)")
    issuer: str | None = Field(description="发证/盖章单位")
    region_code: str | None = Field(description="行政区划 (办结地)")
    mailed: Literal["0", "1"] = Field(description="是否快递寄送结果")
    charged: Literal["0", "1"] | None = Field(description="是否收费 (本平台不记收费, 为 null)")


class ExchangeEvaluation(_Out):
    """政务服务绩效评价 (表9); the product keeps no 好差评 yet, so the list is empty."""

    channel: str = Field(description="评价渠道")
    evaluator: str | None = Field(description="评价人")
    evaluated_at: Instant = _instant("评价时间")
    count: int = Field(description="评价次数")
    satisfaction_code: Literal["1", "2", "3", "4", "5"] = Field(description="满意度代码 (附录A.8)")
    satisfaction: str
    text: str | None = Field(description="文字评价")
    region_code: str | None


class ExchangeCase(_Out):
    """One case as the provincial platform receives it."""

    model_config = ConfigDict(extra="forbid", title="ExchangeCase")

    cursor: str = Field(description="本记录在变更顺序中的位置: 以它续传, 从本记录之后开始")
    case_number: str = Field(description="办件编号")
    version: int
    changed_at: Instant = Field(description="最近一次变更的时间")
    application: ExchangeApplication
    acceptance: ExchangeAcceptance | None = Field(description="受理前为 null")
    steps: list[ExchangeStep]
    special_procedures: list[ExchangeSpecialProcedure]
    supplements: list[ExchangeSupplement]
    completion: ExchangeCompletion | None = Field(description="办结前为 null")
    evaluations: list[ExchangeEvaluation]


class ExchangePage(_Out):
    items: list[ExchangeCase]
    next_cursor: str = Field(description="续传游标, 总是给出: 下次以 after=它 取其后变更的办件; 本页未满表示暂无更多",
                             pattern=r"^[0-9]{1,18}-[0-9]{1,18}$")


# --- the event feed and webhooks (engine.events, engine.webhooks) ---------------------------------

class Event(_Out):
    """One committed history event, as the feed lists it and a webhook delivers it."""

    model_config = ConfigDict(extra="forbid", title="Event")

    id: str = Field(description="事件标识, 稳定不变, 可作幂等键 (办件编号-序号)", examples=["310115202612020001-3"])
    cursor: str = Field(description="此事件在事件流中的位置: 作 after 参数, 从它之后继续读")
    case: str = Field(description="办件编号")
    seq: int = Field(description="此事件在办件内的序号, 即事件后的办件版本 (ETag)")
    item: str = Field(description="事项编码")
    kind: str = Field(description="事件类型: intake 收件, transition 流转, material 材料, "
                                  "claim/release/assign 认领与转交, …")
    trigger: str | None = Field(description="流转的操作 (kind 为 transition 时)")
    from_state: str | None
    to_state: str | None
    counter: str | None = Field(description="事件发生的窗口 (系统自动执行时为 null)")
    at: Instant = Field(description="事件时间 (RFC 3339, 含时区偏移)")


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
    created_at: Instant
    delivered_through: str = Field(description="已确认送达 (2xx) 到的事件流位置")
    failures: int = Field(description="当前事件连续失败的次数")
    next_attempt_at: Instant | None = Field(description="退避中: 下次尝试的时间")
    last_attempt_at: Instant | None
    last_status: int | None = Field(description="上次尝试时接收方答复的 HTTP 状态码")
    last_error: str | None


class CreatedWebhook(Webhook):
    model_config = ConfigDict(extra="forbid", title="CreatedWebhook")

    secret: str | None = Field(description="生成的签名密钥, 仅在此显示一次; 调用方自带密钥时为 null")


class WebhookList(_Out):
    items: list[Webhook]
    next_cursor: str | None = _cursor()


class WebhookDelivery(_Out):
    id: int
    event_id: str
    cursor: str = Field(description="事件在事件流中的位置")
    attempt: int = Field(description="此事件的第几次尝试")
    at: Instant
    status_code: int | None = Field(description="接收方答复的 HTTP 状态码; 未得到答复 (拒绝连接、超时) 时为 null")
    error: str | None = Field(description="失败原因; 成功 (2xx) 时为 null")
    duration_ms: int


class WebhookDeliveryList(_Out):
    items: list[WebhookDelivery]
    next_cursor: str | None = Field(description="更早记录的游标, 无更多则为 null")


# --- 文书 (engine.documents): a case's notices and certificates ---

class CaseDocument(_Out):
    """A notice (受理通知书, …) or certificate of a case, with its 文号 or 证照编号."""

    kind: str = Field(description="receipt|acceptance|refusal|supplement|extension|special_procedure|"
                                  "rejection|approval|service|certificate")
    number: str = Field(description="文号, 例如 青西审受〔2026〕00017号; 证照为证照编号")
    title: str
    issued_at: Instant = Field(description="签发时间 (RFC 3339, 本地时区 +08:00)")
    sha256: str | None = Field(description="PDF 的 sha256; 尚在制作时为 null")
    content_url: str | None = Field(description="下载 PDF (记入办件历史); 尚在制作时为 null")


class CaseDocuments(_Out):
    items: list[CaseDocument]
    next_cursor: str | None = _cursor()


class DrawingRequested(_Out):
    """A notice's drawing asked for (the 收件凭证 before the case leaves intake); list the documents
    until its ``content_url`` appears."""

    kind: str
    queued: bool = Field(description="true: 已排入制作; false: 已制作或已在制作中")


# --- 电子签章核验 (engine.seals, engine.verification) ---

class SignatureReport(_Out):
    """A PDF's electronic signature as pyHanko's validator found it, against this platform's seals."""

    valid: bool = Field(description="签章有效: 文件未被改动, 签名正确, 证书属于本平台成员单位, 签章后无追加内容")
    intact: bool = Field(description="签名覆盖的内容未被改动")
    signer: str = Field(description="签名证书的名称")
    unit_id: str = Field(description="签章单位编号 (证书不属于本平台时为空)")
    unit: str = Field(description="签章单位名称")
    signed_at: Instant | None = Field(description="签章时间 (签章方自报, +08:00)")
    sha256: str = Field(description="文件的 SHA-256")
    reason: str = Field(description="结论及原因 (中文)")


class VerifiedRecord(_Out):
    """The platform's record of an issued certificate or notice."""

    kind: str = Field(description="certificate (证照) 或文书种类 (acceptance 受理通知书 …)")
    number: str = Field(description="证照编号或文号")
    title: str
    holder: str = Field(description="持证主体 / 申请人")
    issued_at: Instant = Field(description="签发时间 (+08:00)")
    status: str = Field(description="状态 (中文: 有效、已撤销、已过期 …)")


class FileVerification(_Out):
    signature: SignatureReport
    record: VerifiedRecord | None = Field(description="与该文件字节完全相同的签发记录; 无则为 null")


class NumberVerification(_Out):
    number: str
    found: bool = Field(description="本平台签发过该编号的证照或文书")
    valid: bool = Field(description="记录当前有效, 且存档文件的电子签章有效")
    reason: str = Field(description="结论 (中文)")
    issuer: str = Field(description="签发单位")
    valid_until: str = Field(description="证照有效期至 (日期或“长期”); 文书为空")
    record: VerifiedRecord | None
    signature: SignatureReport | None = Field(description="存档文件的签章核验; 文件未生成或读不到时为 null")


# --- 分时服务 (engine.appointments) ----------------------------------------------------------------

class Slot(_Out):
    start: str = Field(description="开始时间 (本地时间 HH:MM)")
    end: str
    capacity: int
    left: int = Field(description="剩余名额")
    open: bool = Field(description="此刻能否预约 (未开始且未约满)")


class SlotList(_Out):
    items: list[Slot]
    next_cursor: str | None = _cursor()


class Appointment(_Out):
    """一次预约 (凭预约码查询)."""

    model_config = ConfigDict(extra="forbid", title="Appointment")

    code: str = Field(description="预约码: 查询、取消、改约及到窗口签到时出示")
    status: Literal["booked", "cancelled", "checked_in", "no_show"]
    status_label: str
    counter: str
    counter_name: str
    item: str
    item_name: str
    date: date
    start: str
    end: str
    starts_at: Instant
    name: str
    created_at: Instant
