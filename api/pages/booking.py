"""网上预约, the public booking page (no login, for a phone's screen): choose the item, the counter,
the day and the slot, give a name and a mobile number, get the 预约码; with the code, look the
booking up, cancel it or move it to another slot.

The choices before the booking are GET forms (bookmarkable, nothing written). Everything that
carries the code is a POST, so the code stays out of URLs and logs, and every POST answers with a
303: a booking, cancellation or move to /booking/done, a lookup to /booking/mine, each showing the
booking from a sealed short-lived cookie (``api.pages.sealed``, this path only); a refusal back
to its form, saying why once. F5 and Back then repeat GETs only, and the forms that change a
booking carry a one-time token (``engine.form_tokens``): sent again (Back and submit, a double
click), they change nothing and show the first result. Every lookup counts once against the
client's budget of the public endpoints, as the API's do.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import SessionDep
from api.pages import web
from api.pages.sealed import SealedCookie, fresh_nonce, open_refusal, refusal_value, spend_fresh
from api.pages.workbench import FormToken
from api.routes.public import limit_client
from api.routing import Router
from engine import appointments, form_tokens
from engine.errors import EngineError, InvalidInput

router = Router(pages=True)
TICKET = SealedCookie("tb_booking", "/booking", 600, b"tongban-booking-ticket")  # the booking shown
REFUSED = SealedCookie("tb_booking_refused", "/booking", 120, b"tongban-booking-refusal")
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
    """The choices step by step; after a booking that was refused, why (once) and what was typed."""
    limit_client(request)
    refused = open_refusal(REFUSED, request, "book")
    try:
        chosen = _choice(session, item or None, counter or None, _date(day))
    except EngineError as exc:
        return _page(request, exc.status, exc.said, **_choice(session, item, counter, None))
    if refused is None:
        return _page(request, **chosen)
    kept = refused.kept
    page = _page(request, refused.status, refused.detail, person=kept.get("name", ""), phone=kept.get("phone", ""),
                 picked=kept.get("start"), **chosen)
    REFUSED.clear(request, page)
    return page


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("date", "日期格式应为 YYYY-MM-DD") from None


def _to(request: Request, url: str, code: str | None = None, refused: list[Any] | None = None,
        counted: bool = False) -> RedirectResponse:
    """303 to ``url``; ``code``: the booking it shows (sealed, never in the address); ``refused``:
    why the POST did not pass, shown there once."""
    resp = RedirectResponse(url, status_code=303)
    if code is not None:
        TICKET.give(request, resp, [code, fresh_nonce() if counted else None])
    if refused is not None:
        REFUSED.give(request, resp, refused)
    else:
        REFUSED.clear(request, resp)
    return resp


def _ticket(request: Request) -> tuple[str, bool] | None:
    """The booking this browser made or looked up lately (its code), and whether that lookup was
    counted against the client's budget by the POST that gave it."""
    value = TICKET.open(request)
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str):
        return None
    return value[0], spend_fresh(value[1])


def _first(request: Request, session: Any, token: str) -> Response | None:
    """The same form sent again (F5 on a result, Back and submit): the first result, nothing written."""
    first = form_tokens.first_result(session, form_tokens.PUBLIC, token)
    return _to(request, first["redirect"], first.get("code")) if first else None


def _done(request: Request, session: Any, token: str, code: str) -> RedirectResponse:
    shown = form_tokens.remember(session, form_tokens.PUBLIC, token, "/booking/done", {"code": code})
    return _to(request, "/booking/done", shown["code"], counted=True)


@router.post("/booking", response_class=HTMLResponse)
def booking_submit(request: Request, session: SessionDep, item: Annotated[str, Form(max_length=64)] = "",
                   counter: Annotated[str, Form(max_length=64)] = "",
                   day: Annotated[str, Form(alias="date", max_length=10)] = "",
                   start: Annotated[str, Form(max_length=5)] = "", name: Annotated[str, Form(max_length=60)] = "",
                   phone: Annotated[str, Form(max_length=20)] = "", form_token: FormToken = "") -> Response:
    """确认预约: 303 to the booking (/booking/done), or back to the form saying why; the same form
    sent again books nothing and shows the first booking."""
    limit_client(request)
    if first := _first(request, session, form_token):
        return first
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
        back = {k: v for k, v in {"item": item, "counter": counter, "date": day}.items() if v}
        return _to(request, "/booking" + (f"?{urlencode(back)}" if back else ""), refused=refusal_value(
            "book", exc.said, exc.status, kept={"name": name, "phone": phone, "start": start}))
    return _done(request, session, form_token, booked["code"])


@router.get("/booking/done", response_class=HTMLResponse)
def booking_done(request: Request, session: SessionDep) -> Response:
    ticket = _ticket(request)
    if ticket is None:
        return RedirectResponse("/booking/manage", status_code=303)
    if not ticket[1]:
        limit_client(request)
    try:
        booking = appointments.view(session, ticket[0])
    except EngineError:
        return RedirectResponse("/booking/manage", status_code=303)
    return _no_store(web.render(request, "booking_manage.html", booking=booking, fresh=True, error=None, days=[],
                                slots=None, day=None, day_label=_day_label))


@router.get("/booking/manage", response_class=HTMLResponse)
def manage_form(request: Request) -> Response:
    """The lookup form; after a lookup that was refused, why (once)."""
    refused = open_refusal(REFUSED, request, "manage")
    page = web.render(request, "booking_manage.html", status_code=refused.status if refused else 200, booking=None,
                      fresh=False, error=refused.detail if refused else None, days=[], slots=None, day=None,
                      day_label=_day_label)
    page.headers.update(refused.headers() if refused else {})
    REFUSED.clear(request, page)
    return _no_store(page)


@router.get("/booking/mine", response_class=HTMLResponse)
def manage_booking(request: Request, session: SessionDep,
                   day: Annotated[str | None, Query(alias="date", max_length=10)] = None) -> Response:
    """The booking the lookup found (its code from the ticket): cancel it, or pick a day and a slot
    to move it to; after a change that was refused, why (once). F5 here repeats this GET."""
    ticket = _ticket(request)
    if ticket is None:
        return RedirectResponse("/booking/manage", status_code=303)
    if not ticket[1]:
        limit_client(request)
    refused = open_refusal(REFUSED, request, "mine")
    try:
        page = _manage(request, session, ticket[0], _safe_date(day), refused.status if refused else 200,
                       refused.detail if refused else None)
    except EngineError:
        return RedirectResponse("/booking/manage", status_code=303)
    REFUSED.clear(request, page)
    return _no_store(page)


def _no_store(page: Response) -> Response:
    page.headers["Cache-Control"] = "no-store"  # a booking's code is not kept on a shared screen
    return page


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


def _mine(day: date | None = None) -> str:
    return "/booking/mine" + (f"?{urlencode({'date': day.isoformat()})}" if day else "")


@router.post("/booking/manage", response_class=HTMLResponse)
def manage_lookup(request: Request, session: SessionDep, code: Annotated[str, Form(max_length=32)] = "",
                  day: Annotated[str, Form(alias="date", max_length=10)] = "") -> Response:
    """The booking, by its code: 303 to /booking/mine (with a day, that day's slots to move it to),
    the code sealed in a cookie; a code that finds nothing, 303 back to the form saying why."""
    limit_client(request)
    try:
        found = appointments.view(session, _code(code))["code"]
    except EngineError as exc:
        return _to(request, "/booking/manage", refused=refusal_value("manage", exc.said, exc.status))
    return _to(request, _mine(_safe_date(day)), found, counted=True)


@router.post("/booking/cancel", response_class=HTMLResponse)
def manage_cancel(request: Request, session: SessionDep, code: Annotated[str, Form(max_length=32)] = "",
                  form_token: FormToken = "") -> Response:
    limit_client(request)
    if first := _first(request, session, form_token):
        return first
    try:
        booking = appointments.cancel(session, _code(code))
    except EngineError as exc:
        session.rollback()
        return _failed(request, session, code, exc)
    return _done(request, session, form_token, booking["code"])


@router.post("/booking/reschedule", response_class=HTMLResponse)
def manage_reschedule(request: Request, session: SessionDep, code: Annotated[str, Form(max_length=32)] = "",
                      day: Annotated[str, Form(alias="date", max_length=10)] = "",
                      start: Annotated[str, Form(max_length=5)] = "", form_token: FormToken = "") -> Response:
    limit_client(request)
    if first := _first(request, session, form_token):
        return first
    try:
        when = _date(day)
        if when is None or not start:
            raise InvalidInput("start", "请选择新的日期和时段")
        booking = appointments.reschedule(session, _code(code), when, start)
    except EngineError as exc:
        session.rollback()
        return _failed(request, session, code, exc, _safe_date(day))
    return _done(request, session, form_token, booking["code"])


def _safe_date(text: str | None) -> date | None:
    try:
        return _date(text)
    except EngineError:
        return None


def _failed(request: Request, session: Any, code: str, exc: EngineError, day: date | None = None) -> Response:
    """303 to the booking as it stands, saying why, when the code is right; else to the lookup form."""
    try:
        found = appointments.view(session, _code(code))["code"]
    except EngineError:
        return _to(request, "/booking/manage", refused=refusal_value("manage", exc.said, exc.status))
    return _to(request, _mine(day), found, refused=refusal_value("mine", exc.said, exc.status), counted=True)
