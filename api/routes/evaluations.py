"""好差评: ratings per case (一事一评, with the query code) and per visit (一次一评, at the window's
pad), the rectification of each 差评 (整改, 回访, 申诉复核) and the supervisor's view and CSV export.
Thin: the rules are in ``engine.evaluations`` and ``engine.rectification``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.contract import problems
from api.deps import ActorDep, BearerDep, SessionDep, get_actor
from api.models import Instant
from api.routes.public import limit_client
from api.routing import Router
from api.schemas import NON_BLANK
from engine import evaluations, rectification
from engine.actors import Actor
from engine.errors import InvalidInput

router = Router(prefix="/api/v1", tags=["evaluations"], responses=problems(429))
Text = Annotated[str, StringConstraints(max_length=500)]
Reason = Literal[tuple(evaluations.REASONS)]  # type: ignore[valid-type]

RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rating(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "channel": "case", "number": "TB-2026-000001", "query_code": "123456", "level": 2,
        "reasons": ["slow"], "text": "等了很久"}]})

    channel: Literal["case", "window"] = Field(description="case: 一事一评 (凭查询码); window: 一次一评 (窗口评价器)")
    level: int = Field(ge=1, le=5, description="5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意")
    reasons: list[Reason] = Field(default=[], max_length=8)  # type: ignore[valid-type]
    text: Text = ""
    number: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    query_code: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    ticket: int | None = Field(default=None, ge=1, description="一次一评: 窗口叫到的号的 id")

    @model_validator(mode="after")
    def _subject(self) -> Rating:
        if self.channel == "case" and (self.number is None or self.query_code is None):
            raise ValueError("一事一评须提供办件编号 (number) 和查询码 (query_code)")
        if self.channel == "window" and self.ticket is None:
            raise ValueError("一次一评须提供号 (ticket)")
        return self


async def pad_actor(request: Request, credentials: BearerDep) -> Actor | None:
    """The window's evaluation pad signs in with its own account (role ``pad``); the case channel needs no login."""
    return None if credentials is None else await get_actor(request, credentials)


class Evaluation(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Evaluation")
    id: int
    channel: Literal["case", "window"]
    channel_label: str
    level: int
    level_label: str
    reasons: list[str]
    text: str
    counter: str
    item: str | None
    created_at: Instant
    rectification_id: int | None = Field(description="差评的整改任务; 其他评价为 null")


class Rectification(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Rectification")
    id: int
    evaluation_id: int
    counter_id: str
    status: Literal["open", "done", "appealed", "annulled"]
    status_label: str
    due: date
    overdue: bool
    created_at: Instant
    action: str | None
    done_at: Instant | None
    visit_contacted: bool | None
    visit_note: str | None
    visit_verdict: Literal["satisfied", "unsatisfied"] | None
    visit_at: Instant | None
    appeal_reason: str | None
    appeal_at: Instant | None
    appeal_decision: Literal["upheld", "rejected"] | None
    appeal_note: str | None
    appeal_decided_at: Instant | None


class Rectify(_Body):
    action: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=NON_BLANK)]


class Visit(_Body):
    contacted: bool
    note: Annotated[str, StringConstraints(max_length=2000)] = ""
    verdict: Literal["satisfied", "unsatisfied"]


class Appeal(_Body):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=NON_BLANK)]


class Decision(_Body):
    upheld: bool
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class Satisfaction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    name: str
    count: int
    satisfied: int
    rate: float | None
    bad: int
    bad_open: int
    bad_overdue: int
    annulled: int


class SatisfactionList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Satisfaction]
    next_cursor: str | None


@router.post("/evaluations", status_code=201, response_model=Evaluation,
             responses=problems(401, 403, 404, 409, 422),
             openapi_extra={"security": [{}, {"bearer": []}]})  # the pad signs in; the case channel needs no login
def create_evaluation(body: Rating, request: Request, session: SessionDep,
                      pad: Annotated[Actor | None, Depends(pad_actor)]) -> Any:
    """评价 (好差评)

    一事一评: 办结后凭办件编号和查询码评价; 一次一评: 在窗口评价器 (以评价器账号登录, 不是窗口人员本人)
    上对本窗口当日办理的号评价。
    每件 (每次) 每个渠道只能评价一次; 不满意、非常不满意须给出原因, 并生成整改任务。"""
    limit_client(request)
    if body.channel == "case":
        return evaluations.rate_case(session, body.number or "", body.query_code or "", body.level,
                                     list(body.reasons), body.text)
    if pad is None:
        raise InvalidInput("channel", "一次一评只能在窗口评价器上进行")
    return evaluations.rate_visit(session, pad, body.ticket or 0, body.level, list(body.reasons), body.text)


@router.get("/evaluations/summary", response_model=SatisfactionList, responses=problems(403))
def satisfaction(session: SessionDep, actor: ActorDep, by: Literal["counter", "clerk", "item"] = "counter") -> Any:
    """满意度: 按窗口、人员或事项; 差评在整改中及逾期的数目"""
    return {"items": evaluations.summary(session, actor, by), "next_cursor": None}


@router.get("/evaluations/export.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **problems(403)})
def export(session: SessionDep, actor: ActorDep) -> Response:
    """导出评价 (全国报送格式 CSV, 督查人员)

    所督查区域各窗口的评价; 申诉成立而撤销的差评仍在其中, 末列「申诉撤销」为「是」。"""
    text = evaluations.export_csv(session, actor)
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="evaluations.csv"'})


@router.get("/rectifications/{rect_id:int}", response_model=Rectification, responses=problems(403, 404))
def get_rectification(rect_id: RowId, session: SessionDep, actor: ActorDep) -> Any:
    """整改任务 (本窗口、所督查区域的, 或待本人复核的申诉)"""
    return rectification.view_for(session, actor, rect_id)


@router.post("/rectifications/{rect_id:int}/done", response_model=Rectification, responses=problems(403, 404, 409))
def rectify(rect_id: RowId, body: Rectify, session: SessionDep, actor: ActorDep) -> Any:
    """整改完成 (所在区域的督查人员)"""
    return rectification.rectify(session, actor, rect_id, body.action)


@router.post("/rectifications/{rect_id:int}/visit", response_model=Rectification, responses=problems(403, 404, 409))
def visit(rect_id: RowId, body: Visit, session: SessionDep, actor: ActorDep) -> Any:
    """回访 (不满意则重新整改)"""
    return rectification.follow_up(session, actor, rect_id, body.contacted, body.note, body.verdict)


@router.post("/rectifications/{rect_id:int}/appeal", response_model=Rectification, responses=problems(403, 404, 409))
def appeal(rect_id: RowId, body: Appeal, session: SessionDep, actor: ActorDep) -> Any:
    """申诉 (被评价窗口)"""
    return rectification.appeal(session, actor, rect_id, body.reason)


@router.post("/rectifications/{rect_id:int}/decision", response_model=Rectification,
             responses=problems(403, 404, 409))
def decide(rect_id: RowId, body: Decision, session: SessionDep, actor: ActorDep) -> Any:
    """申诉复核 (上级区域的督查人员)"""
    return rectification.decide(session, actor, rect_id, body.upheld, body.note)
