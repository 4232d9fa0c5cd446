"""The clerk workbench: sign in, the counter's queue, intake, and the case page with its actions."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import SessionDep, UnitRoute
from api.pages import scans_ui, web
from api.pages.diagram import active_states, highlighted_svg
from api.schemas import Applicant
from engine import catalog, dashboard, intake, views
from engine.access import require_case_reader
from engine.actors import Actor, authenticate
from engine.advance import advance, load_case
from engine.errors import EngineError, Forbidden, InvalidInput, Unauthenticated
from storage.tables import Clerk, Counter, CounterItem, ItemVersion, Region

router = APIRouter(route_class=UnitRoute, include_in_schema=False)
Csrf = Annotated[str, Form(alias="csrf", max_length=128)]


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=303)


@router.get("/ui/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, next: str | None = None) -> Response:
    return web.render(request, "login.html", web.current_actor(request, session), next=web.safe_next(next))


@router.post("/ui/login")
def login(request: Request, session: SessionDep, token: Annotated[str, Form(max_length=200)],
          next: Annotated[str, Form(max_length=500)] = "/ui/") -> Response:
    try:
        authenticate(session, token.strip())
    except Unauthenticated as exc:
        return web.render(request, "login.html", None, status_code=401, next=web.safe_next(next),
                          error=exc.detail)
    resp = RedirectResponse(web.safe_next(next), status_code=303)
    resp.set_cookie(web.COOKIE, token.strip(), httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/")
    return resp


@router.post("/ui/logout")
def logout(request: Request, csrf: Csrf) -> Response:
    web.check_csrf(request, csrf)
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


# --- queue ---------------------------------------------------------------------------------

@router.get("/ui/queue", response_class=HTMLResponse)
def queue_page(request: Request, session: SessionDep, counter: str | None = None,
               item: Annotated[str | None, Query(max_length=64)] = None,
               cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    actor = web.require_actor(request, session)
    counters = dashboard.visible_counters(session, actor)
    counter = counter or actor.counter_id or next(iter(counters), None)
    if counter is None:
        raise Forbidden("您没有可查看的窗口", missing=["counter"])
    if counter != actor.counter_id and "supervisor" not in actor.roles:
        raise Forbidden("只能查看本窗口的队列", missing=["role:supervisor"])
    dashboard.check_counter_visible(session, actor, counter)
    page = views.queue(session, counter, item=item or None, cursor=cursor, limit=50)
    names = _clerk_names(session, [it["assignee"] for it in page["items"]])
    return web.render(request, "queue.html", actor, counter=counter, counters=counters,
                      counter_name=_counter_names(session, [counter]).get(counter, counter),
                      page=page, names=names, item=item or "", items=catalog.list_items(session))


# --- intake --------------------------------------------------------------------------------

def _intake_items(session: Session, counter_id: str) -> list[dict[str, Any]]:
    codes = set(session.execute(sa.select(CounterItem.item_code).where(
        CounterItem.counter_id == counter_id, CounterItem.role.in_(["intake", "competent"]))).scalars())
    return [it for it in catalog.list_items(session) if it["code"] in codes]


def _intake_context(session: Session, actor: Actor, item: str | None) -> dict[str, Any]:
    if "clerk" not in actor.roles or actor.counter_id is None:
        raise Forbidden("收件须由窗口收件人员办理", missing=["role:clerk"])
    items = _intake_items(session, actor.counter_id)
    chosen = next((it for it in items if it["code"] == item), items[0] if items else None)
    materials, modes = [], []
    if chosen:
        d = catalog.compiled(session, catalog.latest_version(session, chosen["code"]).id).definition
        materials, modes = d.materials, d.modes
    regions = session.execute(sa.select(Region.code, Region.name).order_by(Region.code)).all()
    return {"items": items, "chosen": chosen, "materials": materials, "modes": modes,
            "regions": regions, "own_region": actor.region_code}


@router.get("/ui/cases/new", response_class=HTMLResponse)
def intake_form(request: Request, session: SessionDep,
                item: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    actor = web.require_actor(request, session)
    return web.render(request, "intake.html", actor, form={}, errors=[],
                      **_intake_context(session, actor, item))


@router.post("/ui/cases/new", response_class=HTMLResponse)
def intake_submit(request: Request, session: SessionDep, csrf: Csrf,
                  item: Annotated[str, Form(max_length=64)],
                  name: Annotated[str, Form(max_length=200)] = "",
                  kind: Annotated[str, Form(max_length=16)] = "person",
                  id_number: Annotated[str, Form(max_length=32)] = "",
                  phone: Annotated[str, Form(max_length=20)] = "",
                  address: Annotated[str, Form(max_length=300)] = "",
                  competent_region: Annotated[str, Form(max_length=12)] = "",
                  materials: Annotated[list[str] | None, Form()] = None) -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    form = {"name": name, "kind": kind, "id_number": id_number, "phone": phone, "address": address,
            "competent_region": competent_region, "materials": materials or []}
    raw = {k: v for k, v in form.items() if k in ("name", "kind", "id_number", "phone", "address") and v}
    try:
        applicant = Applicant.model_validate(raw)
        case, code = intake.create_case(
            session, actor, item, applicant.model_dump(exclude_none=True),
            dict.fromkeys(materials or [], "received"), competent_region or None)
    except ValidationError as exc:
        errors = [{"field": "applicant." + ".".join(str(p) for p in e["loc"]), "reason": e["msg"]}
                  for e in exc.errors()]
        return _intake_error(request, session, actor, item, form, errors)
    except EngineError as exc:
        session.rollback()
        errors = exc.extra.get("errors") or [{"field": "", "reason": exc.detail}]
        return _intake_error(request, session, actor, item, form, errors, exc.status)
    return web.render(request, "created.html", actor, number=case["number"], code=code,
                      status_code=201)


def _intake_error(request: Request, session: Session, actor: Actor, item: str, form: dict[str, Any],
                  errors: list[dict[str, Any]], status: int = 422) -> Response:
    return web.render(request, "intake.html", actor, status_code=status, form=form, errors=errors,
                      **_intake_context(session, actor, item))


# --- the case page -------------------------------------------------------------------------

def visible_case(session: Session, actor: Actor, number: str) -> dict[str, Any]:
    case = load_case(session, number)
    require_case_reader(session, actor, case)
    return case


def _counter_names(session: Session, ids: Any) -> dict[str, str]:
    return dict(session.execute(sa.select(Counter.id, Counter.name).where(Counter.id.in_(set(ids)))).all())


def _clerk_names(session: Session, ids: Any) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    return dict(session.execute(sa.select(Clerk.id, Clerk.name).where(Clerk.id.in_(wanted))).all()) if wanted else {}


def _case_page(request: Request, session: Session, actor: Actor, case: dict[str, Any],
               status_code: int = 200, error: str | None = None, done: str | None = None) -> Response:
    view = views.case_view(session, case, actor)
    events = views.history(session, case["id"])
    c = catalog.compiled(session, case["item_version_id"])
    labels = {name: ref.state.label for name, ref in c.table.items()}
    seen = [*case["parties"].values(), *(e["counter_id"] for e in events if e["counter_id"])]
    counters = _counter_names(session, seen)
    done_label = next((t.label for t in c.definition.transitions if t.trigger == done), None)
    # The video step opens from the holding counter when the state declares one (issue #5).
    video = view["state"]["video"] if actor.counter_id in view["holders"] else None
    return web.render(request, "case.html", actor, status_code=status_code, v=view, events=events,
                      labels=labels, counters=counters, clerks=_clerk_names(session, case["assignees"].values()),
                      error=error, done=done_label, video=video,
                      pages=scans_ui.pages_by_material(session, case["number"], actor),
                      prefect_url=dashboard.prefect_runs_url(case["number"]))


def render_case(request: Request, session: Session, actor: Actor, number: str, status_code: int,
                error: str) -> Response:
    """The case page again, with what went wrong (after the failed write was rolled back)."""
    return _case_page(request, session, actor, load_case(session, number), status_code, error)


@router.get("/ui/cases/{number}", response_class=HTMLResponse)
def case_page(number: str, request: Request, session: SessionDep,
              done: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    actor = web.require_actor(request, session)
    return _case_page(request, session, actor, visible_case(session, actor, number), done=done)


@router.get("/ui/cases/{number}/diagram.svg")
def case_diagram(number: str, request: Request, session: SessionDep) -> Response:
    actor = web.require_actor(request, session)
    case = visible_case(session, actor, number)
    c = catalog.compiled(session, case["item_version_id"])
    content_hash = session.get(ItemVersion, case["item_version_id"]).content_hash  # type: ignore[union-attr]
    svg = highlighted_svg(c, content_hash, active_states(c, case["state"], case["branches"]))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})


@router.post("/ui/cases/{number}/triggers/{trigger}", response_class=HTMLResponse)
def fire(number: str, trigger: str, request: Request, session: SessionDep, csrf: Csrf,
         version: Annotated[int, Form(ge=1)],
         comment: Annotated[str, Form(max_length=2000)] = "") -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    visible_case(session, actor, number)
    payload: dict[str, Any] = {"defer": []}
    if comment.strip():
        payload["comment"] = comment.strip()
    try:
        advance(session, number, trigger, actor, payload, expected_version=version)
    except EngineError as exc:
        session.rollback()
        return render_case(request, session, actor, number, exc.status, exc.detail)
    return RedirectResponse(f"/ui/cases/{number}?done={trigger}", status_code=303)


@router.post("/ui/cases/{number}/materials/{material_id}", response_class=HTMLResponse)
def set_material(number: str, material_id: str, request: Request, session: SessionDep, csrf: Csrf,
                 version: Annotated[int, Form(ge=1)], status: Annotated[str, Form(max_length=16)]) -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    visible_case(session, actor, number)
    try:
        if status not in ("received", "missing"):
            raise InvalidInput("status", "须为 received 或 missing")
        intake.set_material(session, number, actor, material_id, status, version)
    except EngineError as exc:
        session.rollback()
        return render_case(request, session, actor, number, exc.status, exc.detail)
    return RedirectResponse(f"/ui/cases/{number}", status_code=303)
