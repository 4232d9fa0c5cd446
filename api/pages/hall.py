"""The hall: the display (large type, refreshing itself, the called numbers and their windows), the
ticket machine (/hall/ticket, public: a walk-in number), the window clerk's "call next" panel with
the booking check-in (``hall_call.html``, a fragment the workbench may include; here also as a page
of its own at /ui/hall/call), the window's evaluation pad, and 好差评 for supervisors and the
rated windows (/ui/hall/ratings: satisfaction, waiting times, every 差评 with its 整改, 回访, 申诉
and 复核). POST → 303 (PRG); the signed-in ones CSRF-checked. Every form carries a one-time form
token (``engine.form_tokens``): the same form sent again (Back to a page the browser kept, then
submit; a double tap) is sent to the first result and acts nowhere — no second number, no person
skipped, no second rating or 整改. A refused form writes nothing and is answered 303 too, to its
page with ``failed=<token>``, which shows the reason (F5 there is a GET, and Back never lands on
a POST's answer the browser would have to send again); a form without a token (a script) is
answered the page with the reason at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.pages import web
from api.routes.public import limit_client
from api.routing import Router
from core import clock
from engine import appointments, counter_service, directory, evaluations, form_tokens, rectification, tickets
from engine.actors import Actor
from engine.dashboard import visible_counters
from engine.errors import EngineError, InvalidInput

router = Router(pages=True)
REFRESH_SECONDS = 5
Csrf = Annotated[str, Form(max_length=128)]
FormToken = Annotated[str, Form(max_length=64)]
Failed = Annotated[str | None, Query(max_length=64)]


@router.get("/hall", response_class=HTMLResponse)
def hall_display(request: Request, session: SessionDep,
                 counter: Annotated[list[str] | None, Query(max_length=20)] = None) -> Response:
    board = tickets.hall(session, counter)
    names = directory.counter_names(session, counter or [])
    return web.render(request, "hall.html", board=board, latest=board["calls"][0] if board["calls"] else None,
                      refresh=REFRESH_SECONDS, counters=list(names.values()))


@router.get("/hall/ticket", response_class=HTMLResponse)
def ticket_machine(request: Request, session: SessionDep,
                   counter: Annotated[str | None, Query(max_length=64)] = None,
                   group: Annotated[str | None, Query(pattern=r"^[A-E]$")] = None, failed: Failed = None) -> Response:
    """取号机 (the kiosk at the hall's entrance, or a phone): the counter, then the item group (when
    the counter has groups), then the item; each item says its hours and the numbers left today.
    Beside it, 复诊: a returning applicant's case number and query code."""
    refused = _refusal(session, form_tokens.PUBLIC, failed)
    return _machine(request, session, counter, group, error=refused.get("refused"),
                    returning={"number": refused["number"]} if "number" in refused else None)


def _machine(request: Request, session: Any, counter: str | None, group: str | None, status: int = 200,
             error: str | None = None, returning: dict[str, str] | None = None) -> Response:
    counters = _counters(session)
    chosen = next((c for c in counters if c["id"] == counter), None)
    offer = counter_service.machine(session, chosen["id"], _items(session, chosen["id"])) if chosen else None
    shown = None
    if offer is not None:
        if not offer["named"]:
            group = offer["groups"][0]["letter"] if len(offer["groups"]) == 1 else group
        shown = next((g for g in offer["groups"] if g["letter"] == group), None)
        if shown is None and not offer["named"]:
            shown = {"letter": "", "name": "", "items": [i for g in offer["groups"] for i in g["items"]]}
    page = web.render(request, "hall_ticket.html", status_code=status, counters=counters, chosen=chosen,
                      offer=offer, group=shown, ticket=None, error=error, returning=returning or {})
    page.headers["Cache-Control"] = "no-store"  # Back from a number shows the numbers left now
    return page


def _counters(session: Any) -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    for item in appointments.bookable(session):
        for c in item["counters"]:
            seen.setdefault(c["id"], c["name"])
    return [{"id": k, "name": v} for k, v in sorted(seen.items(), key=lambda kv: kv[1])]


def _items(session: Any, counter_id: str) -> dict[str, str]:
    """The items a counter takes in, code → name, by name."""
    return {i["code"]: i["name"] for i in appointments.bookable(session)
            if any(c["id"] == counter_id for c in i["counters"])}


@router.post("/hall/ticket", response_class=HTMLResponse)
def ticket_take(request: Request, session: SessionDep, counter: Annotated[str, Form(max_length=64)] = "",
                group: Annotated[str, Form(max_length=1)] = "",
                item: Annotated[str, Form(max_length=64)] = "", form_token: FormToken = "") -> Response:
    limit_client(request)
    if again := web.sent_before(session, form_tokens.PUBLIC, form_token):  # the number taken, not another
        return again
    try:
        ticket = tickets.walk_in(session, counter, group or None, item or None)
    except EngineError as exc:
        query = {"counter": counter, **({"group": group} if group in tuple("ABCDE") else {})}  # as GET takes them
        return _refuse(session, form_tokens.PUBLIC, form_token, exc, "/hall/ticket", query) \
            or _machine(request, session, counter, group or None, exc.status, exc.said)
    return web.done(session, form_tokens.PUBLIC, form_token, f"/hall/ticket/{ticket['id']}")


@router.post("/hall/ticket/returning", response_class=HTMLResponse)
def ticket_returning(request: Request, session: SessionDep, number: Annotated[str, Form(max_length=32)] = "",
                     code: Annotated[str, Form(max_length=32)] = "", form_token: FormToken = "") -> Response:
    """复诊: the case number and query code take the applicant back to their companion clerk."""
    limit_client(request)
    if again := web.sent_before(session, form_tokens.PUBLIC, form_token):
        return again
    try:
        if not number.strip() or not code.strip():
            raise InvalidInput("number" if not number.strip() else "code", "请输入办件编号和查询码")
        ticket = tickets.returning(session, number.strip(), code.strip())
    except EngineError as exc:
        return _refuse(session, form_tokens.PUBLIC, form_token, exc, "/hall/ticket", number=number) \
            or _machine(request, session, None, None, exc.status, exc.said, {"number": number})
    return web.done(session, form_tokens.PUBLIC, form_token, f"/hall/ticket/{ticket['id']}")


@router.get("/hall/ticket/{ticket_id}", response_class=HTMLResponse)
def ticket_shown(request: Request, session: SessionDep, ticket_id: Annotated[int, Path(ge=1, le=2**31)]) -> Response:
    limit_client(request)
    return web.render(request, "hall_ticket.html", counters=[], ticket=tickets.view(session, ticket_id), error=None,
                      refresh=REFRESH_SECONDS)


@router.get("/ui/hall/call", response_class=HTMLResponse)
def call_panel(request: Request, session: SessionDep, called: Annotated[int | None, Query(ge=1)] = None,
               issued: Annotated[int | None, Query(ge=1)] = None, failed: Failed = None) -> Response:
    actor = web.require_actor(request, session)
    return _call_page(request, session, actor, called, issued, error=_refusal(session, actor.id, failed).get("refused"))


def _call_page(request: Request, session: Any, actor: Actor, called: int | None, issued: int | None,
               status: int = 200, error: str | None = None) -> Response:
    ticket = tickets.view(session, called) if called else None
    return web.render(request, "hall_call_page.html", actor=actor, ticket=ticket, status_code=status,
                      issued=tickets.view(session, issued) if issued else None, error=error,
                      waiting=tickets.hall(session, [actor.counter_id] if actor.counter_id else None)["waiting"])


@router.post("/ui/hall/call")
def call_next(request: Request, session: SessionDep, csrf: Csrf, form_token: FormToken = "") -> Response:
    """叫下一位; the same form sent again shows the number it called, and calls (skips) nobody."""
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    if again := web.sent_before(session, actor.id, form_token):
        return again
    ticket = tickets.call_next(session, actor)
    return web.done(session, actor.id, form_token, "/ui/hall/call" + (f"?called={ticket['id']}" if ticket else ""))


@router.post("/ui/hall/checkin")
def check_in(request: Request, session: SessionDep, csrf: Csrf,
             code: Annotated[str, Form(max_length=32)] = "", form_token: FormToken = "") -> Response:
    """预约签到 at the window: the booking's code gives the applicant a priority number (the same
    form sent again shows that number, never "已签到")."""
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    if again := web.sent_before(session, actor.id, form_token):
        return again
    try:
        if not code.strip():
            raise InvalidInput("code", "请输入预约码")
        ticket = tickets.check_in(session, actor, code)
    except EngineError as exc:
        return _refuse(session, actor.id, form_token, exc, "/ui/hall/call") \
            or _call_page(request, session, actor, None, None, exc.status, exc.said)
    return web.done(session, actor.id, form_token, f"/ui/hall/call?issued={ticket['id']}")


@router.get("/ui/hall/pad", response_class=HTMLResponse)
def evaluation_pad(request: Request, session: SessionDep,
                   done: Annotated[int | None, Query(ge=1, le=5)] = None, failed: Failed = None) -> Response:
    """一次一评: the tablet at the window, signed in as the window's pad (role ``pad``), rates its
    window's last served call."""
    actor = web.require_actor(request, session)
    if "pad" not in actor.roles:  # the clerk's own sign-in never rates their own service
        return web.render(request, "evaluation_pad.html", actor=actor, ticket=None, levels=evaluations.LEVELS,
                          reasons=evaluations.REASONS, done=None, status_code=403,
                          error="本页须以窗口评价器账号登录, 由申请人评价; 窗口人员不能在此评价")
    ticket = tickets.last_called(session, actor)
    return web.render(request, "evaluation_pad.html", actor=actor, ticket=ticket, levels=evaluations.LEVELS,
                      reasons=evaluations.REASONS, done=evaluations.LEVELS.get(done or 0),
                      error=_refusal(session, actor.id, failed).get("refused"))


@router.post("/ui/hall/pad")
def evaluation_pad_rate(request: Request, session: SessionDep, csrf: Csrf,
                        ticket: Annotated[int, Form(ge=1)], level: Annotated[int, Form(ge=1, le=5)],
                        reasons: Annotated[list[str] | None, Form(max_length=8)] = None,
                        text: Annotated[str, Form(max_length=500)] = "", form_token: FormToken = "") -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    if again := web.sent_before(session, actor.id, form_token):  # the thanks, not "已评价过"
        return again
    try:
        evaluations.rate_visit(session, actor, ticket, level, reasons or [], text)
    except EngineError as exc:
        if refused := _refuse(session, actor.id, form_token, exc, "/ui/hall/pad"):
            return refused
        return web.render(request, "evaluation_pad.html", actor=actor, status_code=exc.status,
                          ticket=tickets.last_called(session, actor), levels=evaluations.LEVELS,
                          reasons=evaluations.REASONS, done=None, error=exc.said)
    return web.done(session, actor.id, form_token, f"/ui/hall/pad?done={level}")


@router.get("/ui/hall/ratings", response_class=HTMLResponse)
def ratings(request: Request, session: SessionDep,
            by: Annotated[Literal["counter", "clerk", "item"], Query()] = "counter",
            done: Annotated[Literal["done", "visit", "appeal", "decision"] | None, Query()] = None,
            failed: Failed = None) -> Response:
    """好差评: satisfaction, waiting times and every 差评 with what may be done with it now."""
    actor = web.require_actor(request, session)
    return _ratings_page(request, session, actor, by, done=ACTIONS[done] if done else None,
                         error=_refusal(session, actor.id, failed).get("refused"))


def _ratings_page(request: Request, session: Any, actor: Actor, by: str = "counter", status: int = 200,
                  error: str | None = None, done: str | None = None) -> Response:
    counters = visible_counters(session, actor)
    waits = tickets.waits(session, clock.now() - timedelta(days=30), list(counters))
    for w in waits:
        w["name"] = counters.get(w["counter"], {}).get("name", w["counter"])
    return web.render(request, "hall_ratings.html", actor=actor, status_code=status, by=by, error=error, done=done,
                      summary=evaluations.summary(session, actor, by), waits=waits,
                      items=rectification.listing(session, actor), statuses=rectification.STATUS_LABELS)


ACTIONS = {"done": "整改已记录", "visit": "回访已记录", "appeal": "申诉已提交", "decision": "复核决定已作出"}


@router.post("/ui/hall/rectifications/{rect_id}/{action}")
def rectification_action(request: Request, session: SessionDep, rect_id: Annotated[int, Path(ge=1, le=2**31)],
                         action: Annotated[Literal["done", "visit", "appeal", "decision"], Path()],
                         csrf: Csrf,
                         text: Annotated[str, Form(max_length=2000)] = "",
                         contacted: Annotated[str, Form(max_length=8)] = "",
                         verdict: Annotated[str, Form(max_length=12)] = "",
                         upheld: Annotated[str, Form(max_length=8)] = "", form_token: FormToken = "") -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    if again := web.sent_before(session, actor.id, form_token):  # one 整改, one 回访, one 申诉
        return again
    text = text.strip()
    try:
        if action == "done":
            if not text:
                raise InvalidInput("text", "请填写整改措施")
            rectification.rectify(session, actor, rect_id, text)
        elif action == "visit":
            if verdict not in rectification.VERDICT_LABELS:
                raise InvalidInput("verdict", "请选择申请人对整改的评价")
            rectification.follow_up(session, actor, rect_id, contacted == "yes", text, verdict)
        elif action == "appeal":
            if not text:
                raise InvalidInput("text", "请填写申诉理由")
            rectification.appeal(session, actor, rect_id, text)
        else:
            if upheld not in ("yes", "no"):
                raise InvalidInput("upheld", "请选择复核结论")
            rectification.decide(session, actor, rect_id, upheld == "yes", text)
    except EngineError as exc:
        return _refuse(session, actor.id, form_token, exc, "/ui/hall/ratings", anchor=f"r{rect_id}") \
            or _ratings_page(request, session, actor, status=exc.status, error=exc.said)
    return web.done(session, actor.id, form_token, f"/ui/hall/ratings?done={action}#r{rect_id}")


@router.get("/ui/hall/ratings/export.csv", response_class=Response)
def ratings_export(request: Request, session: SessionDep) -> Response:
    """The national report's CSV for the signed-in supervisor (the API's, with the page session)."""
    actor = web.require_actor(request, session)
    return Response("\ufeff" + evaluations.export_csv(session, actor), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="evaluations.csv"'})


def _refuse(session: Any, clerk_id: int | None, form_token: str, exc: EngineError, page: str,
            query: dict[str, str] | None = None, anchor: str = "", **shown: str) -> Response | None:
    """A refused form: nothing of it written; with a token, 303 to ``page`` showing the reason
    (``shown``: what the form's page fills in again), recorded so the same form sent again lands
    there too. None without a token: the caller answers the page at once."""
    session.rollback()
    if clerk_id is None or not form_tokens.valid(form_token):
        return None
    url = f"{page}?{urlencode({**(query or {}), 'failed': form_token})}" + (f"#{anchor}" if anchor else "")
    return web.done(session, clerk_id, form_token, url, refused=exc.said, **shown)


def _refusal(session: Any, clerk_id: int | None, token: str | None) -> dict[str, str]:
    """The refusal ``failed=`` names, if it is this user's (``refused``: the reason), else nothing."""
    first = form_tokens.first_result(session, clerk_id, token) if token else None
    return first if first and "refused" in first else {}

