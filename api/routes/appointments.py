"""分时服务: public (no login) slots, booking, lookup, cancellation and rescheduling by code.

Thin: the rules are in ``engine.appointments``. Every call counts against the client's budget of
the public endpoints (as the progress query does), so codes cannot be tried at speed.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from api.contract import LOCATION, answer_headers, problems
from api.deps import SessionDep
from api.models import Appointment, SlotList
from api.routes.public import limit_client
from api.routing import Router
from api.schemas import NON_BLANK
from engine import appointments

router = Router(prefix="/api/v1/appointments", tags=["appointments"], responses=problems(429))
Code = Annotated[str, StringConstraints(min_length=6, max_length=16, pattern=r"^[0-9A-Za-z]+$")]
Start = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Ident = Annotated[str, Query(min_length=1, max_length=64)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Booking(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "counter": "pd-zhengwu", "item": "GGCSWSXK", "date": "2026-12-03", "start": "09:30",
        "name": "张三", "phone": "13800000000"}]})

    counter: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    item: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    date: date
    start: Start
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60, pattern=NON_BLANK)]
    phone: Annotated[str, StringConstraints(pattern=r"^1[3-9][0-9]{9}$")]


class NewSlot(_Body):
    date: date
    start: Start


@router.get("/slots", response_model=SlotList, responses=problems(422))
def list_slots(request: Request, session: SessionDep, counter: Ident, item: Ident, date: date) -> Any:
    """查询可预约时段

    窗口在该日 (工作日) 的各时段及剩余名额; 已开始或已约满的时段 open 为 false。"""
    limit_client(request)
    return {"items": appointments.slots(session, counter, item, date), "next_cursor": None}


@router.post("", status_code=201, response_model=Appointment,
             responses={**answer_headers(201, LOCATION), **problems(403, 409, 422)})
def create_appointment(body: Booking, request: Request, response: Response, session: SessionDep) -> Any:
    """预约办事时段

    占用一个名额; 答复中的预约码 (code) 用于查询、取消和改约, 到窗口签到时出示。"""
    limit_client(request)
    booked = appointments.book(session, body.counter, body.item, body.date, body.start, body.name, body.phone)
    response.headers["Location"] = f"/api/v1/appointments/{booked['code']}"
    return booked


@router.get("/{code}", response_model=Appointment, responses=problems(404))
def get_appointment(code: Code, request: Request, session: SessionDep) -> Any:
    """凭预约码查询预约"""
    limit_client(request)
    return appointments.view(session, code)


@router.post("/{code}/cancellation", response_model=Appointment, responses=problems(404, 409))
def cancel_appointment(code: Code, request: Request, session: SessionDep) -> Any:
    """取消预约 (时段开始前)"""
    limit_client(request)
    return appointments.cancel(session, code)


@router.post("/{code}/reschedule", response_model=Appointment, responses=problems(404, 409, 422))
def reschedule_appointment(code: Code, body: NewSlot, request: Request, session: SessionDep) -> Any:
    """改约到其他时段 (先占新名额, 再释放原名额)"""
    limit_client(request)
    return appointments.reschedule(session, code, body.date, body.start)
