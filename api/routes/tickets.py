"""Tickets at the counter: walk-in numbers, check-in of a booking, 复诊号, call next, the hall.

Thin: the rules are in ``engine.tickets``. Taking a ticket and the hall's board need no login (the
kiosk and the display); check-in and calling are the window clerk's.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.models import Instant
from api.routes.public import limit_client
from api.routing import Router
from engine import tickets

router = Router(prefix="/api/v1/tickets", tags=["tickets"], responses=problems(429))
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64)]

RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WalkIn(_Body):
    counter: Ident
    group: Annotated[str, StringConstraints(pattern=r"^[A-Ea-e]$")] | None = Field(
        default=None, description="取号分组 (A–E); 缺省为事项所在的分组, 不指定事项时为 A")
    item: Ident | None = Field(default=None, description="办理的事项 (实施编码); 窗口的取号时间和每日号源按事项计")


class CheckIn(_Body):
    code: Annotated[str, StringConstraints(min_length=6, max_length=16, pattern=r"^[0-9A-Za-z]+$")]


class Returning(_Body):
    number: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    query_code: Annotated[str, StringConstraints(min_length=1, max_length=32)]


class Finish(_Body):
    skipped: bool = False


class Ticket(BaseModel):
    """一张号 (取号、预约签到或复诊号)."""

    model_config = ConfigDict(extra="forbid", title="Ticket")
    id: int
    number: str = Field(description="号码: A001 (现场取号), P001 (预约签到), F001 (复诊号)")
    kind: Literal["walk_in", "appointment", "returning"]
    kind_label: str
    status: Literal["waiting", "called", "done", "skipped"]
    status_label: str
    counter: str
    counter_name: str
    item: str | None
    group: str = Field(description="取号分组的字母 (A–E; P 预约签到, F 复诊号)")
    day: date = Field(description="取号日期 (只在当日有效)")
    ahead: int = Field(description="前面还有几位 (同一队列中当日更早取号、仍在等候的)")
    waited_minutes: int = Field(description="已等候的分钟数: 等候中的到现在, 已叫号的到叫号时")
    expected_minutes: int | None = Field(
        description="预计还需等候的分钟数 (前面的人数加一, 乘以窗口今日相邻两次叫号的平均间隔); "
                    "今日叫号不足两次或已叫号时为 null")
    created_at: Instant
    called_at: Instant | None
    called_by: int | None
    window: str | None = Field(description="叫号的窗口 (大厅显示屏所示)")


class Call(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str
    window: str
    called_at: Instant


class Hall(BaseModel):
    model_config = ConfigDict(extra="forbid", title="HallBoard")
    calls: list[Call]
    waiting: int = Field(description="等候人数")
    longest_wait_minutes: int = Field(description="当前等候最久的号已等了几分钟 (无人等候为 0)")
    mean_wait_minutes: float | None = Field(description="今日从取号到叫号的平均分钟数; 今日尚未叫号为 null")


class Called(BaseModel):
    model_config = ConfigDict(extra="forbid", title="CallNext")
    ticket: Ticket | None = Field(description="叫到的号; 没有人等候时为 null")


@router.post("", status_code=201, response_model=Ticket, responses=problems(409, 422))
def take_ticket(body: WalkIn, request: Request, session: SessionDep) -> Any:
    """现场取号

    按窗口和事项分组 (A–E) 取当日下一个号; 窗口在联盟目录中定有取号时间或每日号源时, 时间以外、
    非工作日或号源取完均答 409 (field 指明是窗口还是事项)。"""
    limit_client(request)
    return tickets.walk_in(session, body.counter, body.group, body.item)


@router.post("/check-in", status_code=201, response_model=Ticket, responses=problems(403, 404, 409))
def check_in(body: CheckIn, session: SessionDep, actor: ActorDep) -> Any:
    """预约签到: 凭预约码在预约的窗口签到, 得到优先号"""
    return tickets.check_in(session, actor, body.code)


@router.post("/returning", status_code=201, response_model=Ticket, responses=problems(404, 409))
def returning(body: Returning, request: Request, session: SessionDep) -> Any:
    """复诊号: 凭办件编号和查询码回到陪办人员的窗口, 不再排队"""
    limit_client(request)
    return tickets.returning(session, body.number, body.query_code)


@router.post("/call-next", response_model=Called, responses=problems(403, 409))
def call_next(session: SessionDep, actor: ActorDep) -> Any:
    """叫下一位 (本窗口: 复诊号、预约签到、现场取号依次)"""
    return {"ticket": tickets.call_next(session, actor)}


@router.post("/{ticket_id:int}/finish", response_model=Ticket, responses=problems(403, 404))
def finish(ticket_id: RowId, body: Finish, session: SessionDep, actor: ActorDep) -> Any:
    """办理完毕或过号"""
    return tickets.finish(session, actor, ticket_id, body.skipped)


@router.get("/hall", response_model=Hall)
def hall(request: Request, session: SessionDep,
         counter: Annotated[list[str] | None, Query(max_length=20)] = None) -> Any:
    """大厅显示屏: 最近叫到的号及其窗口, 等候人数"""
    limit_client(request)
    return tickets.hall(session, counter)


@router.get("/{ticket_id:int}", response_model=Ticket, responses=problems(404))
def get_ticket(ticket_id: RowId, request: Request, session: SessionDep) -> Any:
    """查询号的状态 (前面还有几位)"""
    limit_client(request)
    return tickets.view(session, ticket_id)
