"""The clerk workbench: sign in, the counter's queue, intake, and the case page with its actions."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import SessionDep
from api.pages import case_page, web
from api.pages.diagram import active_states, highlighted_svg
from api.routing import Router
from api.schemas import Applicant, Commitment
from core import clock
from core.settings import get_settings
from engine import applicants, assignment, catalog, directory, form_tokens, intake, labels, lifecycle, views, workdays
from engine.actors import Actor, end_session, start_session
from engine.advance import advance
from engine.errors import EngineError, Forbidden, InvalidInput, NotFound, Unauthenticated
from states import defaults

router = Router(pages=True)
LOGIN_FORM_REFUSED = ("登录表单已失效或并非来自本系统的登录页 (可能是其他网站代为提交), 未登录, 原有会话不变。"
                      "请在本页重新输入令牌登录。")
Csrf = Annotated[str, Form(alias="csrf", max_length=128)]
FormToken = Annotated[str, Form(max_length=64)]


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=303)


@router.get("/ui/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str | None = None) -> Response:
    return _login_page(request, web.current_actor(request, session), web.safe_next(next))


def _login_page(request: Request, actor: Actor | None, next_url: str, status_code: int = 200,
                error: str | None = None) -> Response:
    """The form with a fresh pre-session cookie and the token bound to it."""
    pre = web.new_pre_session()
    resp = web.render(request, "login.html", actor, status_code=status_code, next=next_url, error=error,
                      login_csrf=web.login_token(pre))
    web.set_pre_session(request, resp, pre)
    return resp


@router.post("/ui/login")
def login(request: Request, session: SessionDep, token: Annotated[str, Form(max_length=200)],
          next: Annotated[str, Form(max_length=500)] = "/ui/",
          login_csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    # Without the cookie and token of a form this browser was shown (a page elsewhere posting a
    # token of its choosing), nothing is signed in and the session the browser has stays as it is.
    if not web.login_form_ok(request, login_csrf):
        return _login_page(request, None, web.safe_next(next), 403, LOGIN_FORM_REFUSED)
    try:
        _, fresh = start_session(session, token.strip(), get_settings().session_hours)
    except Unauthenticated as exc:
        return _login_page(request, None, web.safe_next(next), 401, exc.detail)
    resp = RedirectResponse(web.safe_next(next), status_code=303)
    web.set_session(request, resp, fresh)
    return resp


@router.post("/ui/logout")
def logout(request: Request, session: SessionDep, csrf: Csrf) -> Response:
    web.check_csrf(request, csrf)
    end_session(session, web.session_token(request) or "")
    resp = RedirectResponse("/ui/login", status_code=303)
    resp.delete_cookie(web.COOKIE, path="/")
    return resp


@router.get("/ui/")
def home(request: Request, session: SessionDep) -> Response:
    actor = web.require_actor(request, session)
    if "supervisor" in actor.roles:
        return RedirectResponse("/ui/dashboard", status_code=303)
    if actor.counter_id is None:
        return RedirectResponse("/ui/designer", status_code=303)
    return RedirectResponse("/ui/queue", status_code=303)


# --- intake --------------------------------------------------------------------------------

def _intake_items(session: Session, counter_id: str) -> list[dict[str, Any]]:
    codes = directory.counter_item_codes(session, counter_id)
    return [it for it in catalog.list_items(session) if it["code"] in codes]


def _intake_context(session: Session, actor: Actor, item: str | None) -> dict[str, Any]:
    if "clerk" not in actor.roles or actor.counter_id is None:
        raise Forbidden("收件须由窗口收件人员办理", missing=["role:clerk"])
    items = _intake_items(session, actor.counter_id)
    chosen = next((it for it in items if it["code"] == item), items[0] if items else None)
    materials, modes, asked, regions, commitment = [], [], [], [], False
    if chosen:
        compiled = catalog.compiled(session, catalog.latest_version(session, chosen["code"]).id)
        d = compiled.definition
        materials, modes, asked = d.materials, d.modes, d.situations
        regions = views.intake_regions(session, compiled)
        commitment = any("commitment_signed" in t.guards for t in d.transitions)
    return {"items": items, "chosen": chosen, "materials": materials, "modes": modes, "situations": asked,
            "regions": regions, "own_region": actor.region_code, "commitment_used": commitment,
            "person_types": applicants.PERSON_TYPES, "company_types": applicants.COMPANY_TYPES,
            "defer_until": workdays.calendar(session).add(clock.today(), get_settings().defer_days).isoformat(),
            "today": clock.today().isoformat(),
            "counter_name": directory.counter_names(session, [actor.counter_id]).get(actor.counter_id, "本窗口")}


@router.get("/ui/cases/new", response_class=HTMLResponse)
def intake_form(request: Request, session: SessionDep,
                item: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    actor = web.require_actor(request, session)
    return web.render(request, "intake.html", actor, form={}, errors=[],
                      **_intake_context(session, actor, item))


Short = Annotated[str, Form(max_length=64)]


@router.post("/ui/cases/new", response_class=HTMLResponse)
def intake_submit(request: Request, session: SessionDep, csrf: Csrf,
                  item: Annotated[str, Form(max_length=64)],
                  name: Annotated[str, Form(max_length=200)] = "",
                  kind: Annotated[str, Form(max_length=16)] = "person",
                  id_type: Short = "",
                  id_number: Annotated[str, Form(max_length=32)] = "",
                  phone: Annotated[str, Form(max_length=20)] = "",
                  address: Annotated[str, Form(max_length=300)] = "",
                  agent_name: Annotated[str, Form(max_length=200)] = "",
                  agent_id_type: Short = "",
                  agent_id_number: Annotated[str, Form(max_length=32)] = "",
                  agent_phone: Annotated[str, Form(max_length=20)] = "",
                  mode: Short = "",
                  competent_region: Annotated[str, Form(max_length=12)] = "",
                  materials: Annotated[list[str] | None, Form()] = None,
                  defer: Annotated[list[str] | None, Form()] = None,
                  promise_material: Annotated[list[str] | None, Form()] = None,
                  promise_date: Annotated[list[str] | None, Form()] = None,
                  commit: Annotated[str, Form(max_length=8)] = "",
                  signer: Annotated[str, Form(max_length=200)] = "",
                  situation: Annotated[list[str] | None, Form()] = None,
                  form_token: FormToken = "") -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    # The same form sent again (F5 on the result, Back and submit) is shown the first result.
    if again := web.sent_before(session, actor.id, form_token):
        return again
    token = form_token if form_tokens.valid(form_token) else form_tokens.new()
    # 事项情形: one "question:option" per question (bounded: an item asks at most 20).
    answers = dict(p[:130].partition(":")[::2] for p in (situation or [])[:20] if ":" in p)
    dates = dict(zip(promise_material or [], promise_date or [], strict=False))
    deferred = [m for m in (defer or [])[:50] if m not in (materials or [])]
    form = {"name": name, "kind": kind, "id_type": id_type, "id_number": id_number, "phone": phone,
            "address": address, "agent_name": agent_name, "agent_id_type": agent_id_type,
            "agent_id_number": agent_id_number, "agent_phone": agent_phone, "mode": mode,
            "competent_region": competent_region, "materials": materials or [], "situation": answers,
            "defer": deferred, "promise_dates": dates, "commit": bool(commit), "signer": signer}
    raw: dict[str, Any] = {k: v for k, v in form.items()
                           if k in ("name", "kind", "id_type", "id_number", "phone", "address") and v}
    agent = {k: v for k, v in {"name": agent_name, "id_type": agent_id_type, "id_number": agent_id_number,
                               "phone": agent_phone}.items() if v.strip()}
    if set(agent) - {"id_type"}:  # the type alone is the select's default, not an agent
        raw["agent"] = agent
    try:
        promises = [{"material": m, "promise": _promise(dates.get(m, ""))} for m in deferred]
        if commit and not signer.strip():
            raise InvalidInput("signer", "签署告知承诺须填写承诺人")
        applicant = Applicant.model_validate(raw)
        case, code = intake.create_case(
            session, actor, item, applicant.model_dump(exclude_none=True),
            dict.fromkeys(materials or [], "received"), competent_region or None, mode=mode or None,
            commitment=Commitment(signer=signer).model_dump() if commit else None,
            defer=promises, situation=answers)
    except ValidationError as exc:
        return _intake_error(request, session, actor, item, form, labels.validation_sentences(exc.errors()))
    except EngineError as exc:
        session.rollback()
        errors = exc.extra.get("errors") or [{"field": exc.extra.get("field", ""), "reason": exc.detail}]
        return _intake_error(request, session, actor, item, form, labels.engine_errors(errors), exc.status)
    done = f"/ui/cases/new/done/{token}"
    shown = form_tokens.remember(session, actor.id, token, done, {"query_code": code}, number=case["number"])
    return RedirectResponse(shown["redirect"], status_code=303)


def _promise(day: str) -> str:
    """容缺: the applicant's promise, to bring the material by the day the clerk entered."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise InvalidInput("promise_date", "容缺受理须填写承诺补齐日期 (年-月-日)") from None
    if when < clock.today():
        raise InvalidInput("promise_date", "承诺补齐日期不能早于今天")
    return f"申请人承诺于 {when.year} 年 {when.month} 月 {when.day} 日前补齐"


@router.get("/ui/cases/new/done/{token}", response_class=HTMLResponse)
def intake_done(token: Annotated[str, Path(max_length=64)], request: Request, session: SessionDep) -> Response:
    """收件成功 after the redirect: the number and the query code the intake recorded for this
    clerk's form (F5 here shows it again and creates nothing)."""
    actor = web.require_actor(request, session)
    first = form_tokens.first_result(session, actor.id, token)
    if not first or "number" not in first:
        raise NotFound("没有这次收件的记录 (已过期或不是您办理的)")
    return web.render(request, "created.html", actor, number=first["number"], code=first.get("query_code", ""))


def _intake_error(request: Request, session: Session, actor: Actor, item: str, form: dict[str, Any],
                  errors: list[dict[str, Any]], status: int = 422) -> Response:
    return web.render(request, "intake.html", actor, status_code=status, form=form, errors=errors,
                      **_intake_context(session, actor, item))


# --- the case page -------------------------------------------------------------------------

@router.get("/ui/cases/{number}", response_class=HTMLResponse)
def show_case(number: str, request: Request, session: SessionDep,
              done: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    actor = web.require_actor(request, session)
    return case_page.render(request, session, actor, case_page.visible_case(session, actor, number), done=done)


@router.get("/ui/cases/{number}/diagram.svg")
def case_diagram(number: str, request: Request, session: SessionDep) -> Response:
    actor = web.require_actor(request, session)
    case = case_page.visible_case(session, actor, number)
    item = catalog.compiled(session, case["item_version_id"])
    svg = highlighted_svg(item, catalog.content_hash(session, case["item_version_id"]),
                          active_states(item, case["state"], case["branches"]))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


@router.post("/ui/cases/{number}/triggers/{trigger}", response_class=HTMLResponse)
def fire(number: str, trigger: str, request: Request, session: SessionDep, csrf: Csrf,
         version: Annotated[int, Form(ge=1)],
         comment: Annotated[str, Form(max_length=2000)] = "",
         tick: Annotated[list[str] | None, Form(max_length=64)] = None,
         material: Annotated[list[str] | None, Form(max_length=64)] = None,
         reason: Annotated[list[str] | None, Form(max_length=500)] = None,
         cert_id: Annotated[list[str] | None, Form(max_length=64)] = None,
         cert_value: Annotated[list[str] | None, Form(max_length=2000)] = None,
         form_token: FormToken = "") -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    case_page.visible_case(session, actor, number)
    if again := web.sent_before(session, actor.id, form_token):
        return again
    payload: dict[str, Any] = {"defer": []}
    if comment.strip():
        payload["comment"] = comment.strip()
    if material is not None:  # 补正: the ticked materials, each with its reason (one notice lists them all)
        reasons = dict(zip(material, reason or [], strict=False))
        payload["data"] = {"supplement": [{"material": m, "reason": reasons.get(m, "")} for m in tick or []]}
    if cert_id:  # the certificate's data the approver entered beside the button
        values = {k: v for k, v in zip(cert_id, cert_value or [], strict=False) if v.strip()}
        payload["data"] = {**payload.get("data", {}), "certificate": values}
    try:
        advance(session, number, trigger, actor, payload, expected_version=version)
    except EngineError as exc:
        session.rollback()
        return case_page.render_case(request, session, actor, number, exc.status, exc)
    return web.done(session, actor.id, form_token, f"/ui/cases/{number}?done={trigger}")


@router.post("/ui/cases/{number}/send-back", response_class=HTMLResponse)
def send_back(number: str, request: Request, session: SessionDep, csrf: Csrf, version: Annotated[int, Form(ge=1)],
              target: Annotated[str, Form(max_length=64)], comment: Annotated[str, Form(max_length=2000)] = "",
              form_token: FormToken = "") -> Response:
    """退回: one form, the step to return to chosen from those open (each is its own trigger)."""
    def act(actor: Actor) -> None:
        if not target.startswith(defaults.BACK_PREFIX):
            raise InvalidInput("target", "请选择退回到的环节")
        advance(session, number, target, actor, {"comment": comment.strip() or None}, expected_version=version)
    return _case_action(request, session, csrf, number, form_token, act, done=target)


@router.post("/ui/cases/{number}/hand-over", response_class=HTMLResponse)
def hand_over(number: str, request: Request, session: SessionDep, csrf: Csrf, version: Annotated[int, Form(ge=1)],
              counter_id: Annotated[str, Form(max_length=64)], clerk_id: Annotated[int, Form(ge=1)],
              comment: Annotated[str, Form(max_length=2000)] = "", form_token: FormToken = "") -> Response:
    """转交 to a named colleague (the claimant or the companion), 改派 by a supervisor."""
    return _case_action(request, session, csrf, number, form_token, lambda actor: assignment.hand_over(
        session, number, actor, counter_id, clerk_id, version, comment.strip() or None), done="assign")


@router.get("/ui/cases/{number}/version")
def case_version(number: str, request: Request, session: SessionDep) -> JSONResponse:
    """The case's version, for the page to notice a move made elsewhere (the system, a colleague)."""
    actor = web.require_actor(request, session)
    case = case_page.visible_case(session, actor, number)
    return JSONResponse({"version": case["version"]}, headers={"Cache-Control": "no-store"})


@router.post("/ui/cases/{number}/materials/{material_id}", response_class=HTMLResponse)
def set_material(number: str, material_id: str, request: Request, session: SessionDep, csrf: Csrf,
                 version: Annotated[int, Form(ge=1)], status: Annotated[str, Form(max_length=16)],
                 form_token: FormToken = "") -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    case_page.visible_case(session, actor, number)
    if again := web.sent_before(session, actor.id, form_token):
        return again
    try:
        if status not in ("received", "missing"):
            raise InvalidInput("status", "须为 received 或 missing")
        intake.set_material(session, number, actor, material_id, status, version)
    except EngineError as exc:
        session.rollback()
        return case_page.render_case(request, session, actor, number, exc.status, exc)
    return web.done(session, actor.id, form_token, f"/ui/cases/{number}?done=material")


@router.post("/ui/cases/{number}/claim", response_class=HTMLResponse)
def claim(number: str, request: Request, session: SessionDep, csrf: Csrf,
          version: Annotated[int, Form(ge=1)], form_token: FormToken = "") -> Response:
    return _case_action(request, session, csrf, number, form_token,
                        lambda actor: assignment.claim(session, number, actor, version), done="claim")


@router.post("/ui/cases/{number}/release", response_class=HTMLResponse)
def release(number: str, request: Request, session: SessionDep, csrf: Csrf,
            version: Annotated[int, Form(ge=1)], form_token: FormToken = "") -> Response:
    return _case_action(request, session, csrf, number, form_token,
                        lambda actor: assignment.release(session, number, actor, version), done="release")


@router.post("/ui/cases/{number}/extension", response_class=HTMLResponse)
def extend(number: str, request: Request, session: SessionDep, csrf: Csrf, version: Annotated[int, Form(ge=1)],
           reason: Annotated[str, Form(max_length=2000)] = "", form_token: FormToken = "") -> Response:
    return _case_action(request, session, csrf, number, form_token,
                        lambda actor: lifecycle.extend(session, number, actor, reason, version),
                        done="extension")


def _case_action(request: Request, session: Session, csrf: str, number: str, form_token: str,
                 act: Any, done: str) -> Response:
    """A form on the case page: the action, then back to the page (303, so F5 does not repeat it);
    a refusal is shown on the page, with nothing written; the same form sent again (Back and
    submit) is sent to the first result."""
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    case_page.visible_case(session, actor, number)
    if again := web.sent_before(session, actor.id, form_token):
        return again
    try:
        act(actor)
    except EngineError as exc:
        session.rollback()
        return case_page.render_case(request, session, actor, number, exc.status, exc)
    return web.done(session, actor.id, form_token, f"/ui/cases/{number}?done={done}")

