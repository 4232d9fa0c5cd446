"""网上预约, the public booking page (no login, for a phone's screen): choose the item, the counter,
the day and the slot, give a name and a mobile number, get the 预约码; with the code, look the
booking up, cancel it or move it to another slot.

The choices before the booking are GET forms (bookmarkable, nothing written). Everything that
carries the code is a POST, so the code stays out of URLs and logs; a successful booking,
cancellation or move answers 303 to /booking/done, which shows the booking from a short-lived
cookie (HttpOnly, this path only): F5 there repeats nothing. Every request counts against the
client's budget of the public endpoints, as the API's do.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep
from api.pages import web
from api.routes.public import limit_client
from api.routing import Router
from engine import appointments
from engine.errors import EngineError, InvalidInput

router = Router(pages=True)
DONE_COOKIE = "tb_booking"
DONE_SECONDS = 600
WEEKDAYS = "一二三四五六日"


def _day_label(day: date) -> str:
    return f"{day.month}月{day.day}日 星期{WEEKDAYS[day.weekday()]}"


def _choice(session: Any, item: str | None, counter: str | None, day: date | None) -> dict[str, Any]:
    """What the form shows for the choices made so far (each one valid only with those before it)."""
    items = appointments.bookable(session)
    chosen = next((i for i in items if i["code"] == item), None)
    counters = chosen["counters"] if chosen else []
    place = next((c for c in counters if c["id"] == counter), None)
    days = appointments.bookable_days(session) if place else []
    slots = None
    if place and day is not None:
        if day not in days:
            raise InvalidInput("date", "请选择列出的工作日")
        slots = appointments.slots(session, place["id"], chosen["code"], day) if chosen else None
    return {"items": items, "item": chosen, "counters": counters, "counter": place,
            "days": [{"value": d.isoformat(), "label": _day_label(d)} for d in days],
            "day": day.isoformat() if day and slots is not None else None, "slots": slots}


def _page(request: Request, status: int = 200, error: str | None = None, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("person", "")
    ctx.setdefault("phone", "")
    return web.render(request, "booking.html", status_code=status, error=error, **ctx)


@router.get("/booking", response_class=HTMLResponse)
def booking_form(request: Request, session: SessionDep,
                 item: Annotated[str | None, Query(max_length=64)] = None,
                 counter: Annotated[str | None, Query(max_length=64)] = None,
                 day: Annotated[str | None, Query(alias="date", max_length=10)] = None) -> Response:
    limit_client(request)
    try:
        chosen = _choice(session, item or None, counter or None, _date(day))
    except EngineError as exc:
        return _page(request, exc.status, exc.detail, **_choice(session, item, counter, None))
    return _page(request, **chosen)


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("date", "日期格式应为 YYYY-MM-DD") from None


def _done(request: Request, code: str) -> RedirectResponse:
    resp = RedirectResponse("/booking/done", status_code=303)
    resp.set_cookie(DONE_COOKIE, code, max_age=DONE_SECONDS, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/booking")
    return resp


@router.post("/booking", response_class=HTMLResponse)
def booking_submit(request: Request, session: SessionDep, item: Annotated[str, Form(max_length=64)] = "",
                   counter: Annotated[str, Form(max_length=64)] = "",
                   day: Annotated[str, Form(alias="date", max_length=10)] = "",
                   start: Annotated[str, Form(max_length=5)] = "", name: Annotated[str, Form(max_length=60)] = "",
                   phone: Annotated[str, Form(max_length=20)] = "") -> Response:
    limit_client(request)
    name, phone = name.strip(), phone.strip()
    try:
        when = _date(day)
        if when is None:
            raise InvalidInput("date", "请选择日期")
        if not name:
            raise InvalidInput("name", "请填写姓名")
        if not start:
            raise InvalidInput("start", "请选择时段")
        booked = appointments.book(session, counter, item, when, start, name, phone)
    except EngineError as exc:
        session.rollback()
        try:
            chosen = _choice(session, item, counter, _date(day))
        except EngineError:
            chosen = _choice(session, item, counter, None)
        return _page(request, exc.status, exc.detail, person=name, phone=phone, picked=start, **chosen)
    return _done(request, booked["code"])


@router.get("/booking/done", response_class=HTMLResponse)
def booking_done(request: Request, session: SessionDep) -> Response:
    code = request.cookies.get(DONE_COOKIE, "")
    if not code:
        return RedirectResponse("/booking/manage", status_code=303)
    limit_client(request)
    try:
        booking = appointments.view(session, code)
    except EngineError:
        return RedirectResponse("/booking/manage", status_code=303)
    return web.render(request, "booking_manage.html", booking=booking, fresh=True, error=None, days=[],
                      slots=None, day=None, day_label=_day_label)


@router.get("/booking/manage", response_class=HTMLResponse)
def manage_form(request: Request) -> Response:
    return web.render(request, "booking_manage.html", booking=None, fresh=False, error=None, days=[], slots=None,
                      day=None, day_label=_day_label)


def _manage(request: Request, session: Any, code: str, day: date | None = None, status: int = 200,
            error: str | None = None) -> HTMLResponse:
    booking = appointments.view(session, code)
    days, slots = [], None
    if booking["status"] == "booked":
        days = [{"value": d.isoformat(), "label": _day_label(d)} for d in appointments.bookable_days(session)]
        if day is not None:
            slots = appointments.slots(session, booking["counter"], booking["item"], day)
    return web.render(request, "booking_manage.html", status_code=status, booking=booking, fresh=False,
                      error=error, days=days, slots=slots, day=day.isoformat() if day else None,
                      day_label=_day_label)


def _code(code: str) -> str:
    code = code.strip().upper()
    if not 6 <= len(code) <= 16 or not code.isalnum():
        raise InvalidInput("code", "请填写短信中的 10 位预约码")
    return code


@router.post("/booking/manage", response_class=HTMLResponse)
def manage_lookup(request: Request, session: SessionDep, code: Annotated[str, Form(max_length=32)] = "",
                  day: Annotated[str, Form(alias="date", max_length=10)] = "") -> Response:
    """The booking, by its code; with a day, that day's slots to move it to."""
    limit_client(request)
    try:
        return _manage(request, session, _code(code), _date(day))
    except EngineError as exc:
        return web.render(request, "booking_manage.html", status_code=exc.status, booking=None, fresh=False,
                          error=exc.detail, days=[], slots=None, day=None, day_label=_day_label)


@router.post("/booking/cancel", response_class=HTMLResponse)
def manage_cancel(request: Request, session: SessionDep, code: Annotated[str, Form(max_length=32)] = "") -> Response:
    limit_client(request)
    try:
        booking = appointments.cancel(session, _code(code))
    except EngineError as exc:
        session.rollback()
        return _failed(request, session, code, exc)
    return _done(request, booking["code"])


@router.post("/booking/reschedule", response_class=HTMLResponse)
def manage_reschedule(request: Request, session: SessionDep, code: Annotated[str, Form(max_length=32)] = "",
                      day: Annotated[str, Form(alias="date", max_length=10)] = "",
                      start: Annotated[str, Form(max_length=5)] = "") -> Response:
    limit_client(request)
    try:
        when = _date(day)
        if when is None or not start:
            raise InvalidInput("start", "请选择新的日期和时段")
        booking = appointments.reschedule(session, _code(code), when, start)
    except EngineError as exc:
        session.rollback()
        return _failed(request, session, code, exc, _safe_date(day))
    return _done(request, booking["code"])


def _safe_date(text: str) -> date | None:
    try:
        return _date(text)
    except EngineError:
        return None


def _failed(request: Request, session: Any, code: str, exc: EngineError, day: date | None = None) -> HTMLResponse:
    """The manage page again, saying why; the booking shown as it stands, when the code is right."""
    try:
        return _manage(request, session, _code(code), day, exc.status, exc.detail)
    except EngineError:
        return web.render(request, "booking_manage.html", status_code=exc.status, booking=None, fresh=False,
                          error=exc.detail, days=[], slots=None, day=None, day_label=_day_label)
