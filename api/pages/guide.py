"""办事指南 pages (public, phone-friendly): /guide lists and searches, /guide/<code> asks the 情形
questions (a GET form) and shows the exact one-time list; 要件预审: the applicant uploads drafts
(/guide/<code>/prereview, no login) and reads the comments (/guide/prereviews/<预审码>), a clerk
comments per material and takes the pre-review in as a case (/ui/prereviews)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import UploadFile as StarletteUpload

from api.deps import SessionDep
from api.pages import web
from api.routes.public import limit_client
from api.routing import Router
from api.schemas import Applicant
from engine import form_tokens, guide, guide_prereview, labels
from engine.actors import Actor
from engine.errors import EngineError, InvalidInput, NotFound
from engine.scan_validation import sniff

router = Router(pages=True)


@router.get("/guide", response_class=HTMLResponse)
def guide_index(request: Request, session: SessionDep,
                q: Annotated[str, Query(max_length=200)] = "") -> Response:
    results = guide.search(session, q, 8) if q.strip() else []
    return web.render(request, "guide.html", None, items=guide.catalog_guide(session), q=q, results=results)


@router.get("/guide/{code}", response_class=HTMLResponse)
def guide_item(request: Request, session: SessionDep, code: str) -> Response:
    picked = {k[2:]: v[:64] for k, v in list(request.query_params.items())[:20] if k.startswith("s_")}
    error = None
    try:
        g = guide.item_guide(session, code)
        answers = None
        if picked:
            try:
                g = guide.item_guide(session, code, picked)
                answers = g["answers"]
            except InvalidInput as exc:
                error = exc.extra["errors"][0]["reason"]
    except NotFound:
        return web.error_page(request, 404, "没有这个事项", "请从办事指南目录中选择事项。")
    return web.render(request, "guide_item.html", None, g=g, picked=picked, answers=answers, error=error)


@router.get("/guide/{code}/files/{name}")
def guide_file(session: SessionDep, code: str, name: str) -> Response:
    """A blank form or sample beside the item, to download or print (public)."""
    path, media_type = guide.form_file(session, code[:64], name[:120])
    return FileResponse(path, media_type=media_type, headers={
        "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.name)}"})


# -- 要件预审: the applicant's upload (no login) and the clerk's review ------------------------------

router.allow_larger(r"^/guide/([^/]+/prereview|prereviews/[^/]+/drafts)$",
                    lambda: guide_prereview.MAX_BODY_BYTES + 65_536, uncredentialed=True)


def _picked(request: Request) -> dict[str, str]:
    return {k[2:]: v[:64] for k, v in list(request.query_params.items())[:20] if k.startswith("s_")}


def _prereview_form(request: Request, session: Session, code: str, picked: dict[str, str],
                    status_code: int = 200, error: str | None = None, phone: str = "") -> Response:
    try:
        g = guide.item_guide(session, code)
    except NotFound:
        return web.error_page(request, 404, "没有这个事项", "请从办事指南目录中选择事项。")
    answers = None
    if picked or not g["situations"]:
        try:
            g = guide.item_guide(session, code, picked)
            answers = g["answers"]
        except InvalidInput as exc:
            error = error or exc.extra["errors"][0]["reason"]
    return web.render(request, "guide_prereview.html", None, status_code=status_code, g=g, picked=picked,
                      answers=answers, error=error, phone=phone)


@router.get("/guide/{code}/prereview", response_class=HTMLResponse)
def prereview_form(request: Request, session: SessionDep, code: str) -> Response:
    return _prereview_form(request, session, code, _picked(request))


async def _draft_files(request: Request) -> list[tuple[str, StarletteUpload]]:
    """The form's file inputs, one per material (``f_<material id>``), those with a file chosen.
    By name, not by order: a browser may leave an empty input out."""
    form = await request.form(max_files=30)
    return [(k[2:66], v) for k, v in form.multi_items() if k.startswith("f_") and isinstance(v, StarletteUpload)
            and v.filename][:30]


def _drafts(files: list[tuple[str, StarletteUpload]]) -> dict[str, tuple[str, bytes]]:
    """material id → (file name, bytes) of the files sent, a byte over the cap read so the engine
    refuses an oversized draft by its size."""
    drafts: dict[str, tuple[str, bytes]] = {}
    for mid, f in files:
        data = f.file.read(guide_prereview.MAX_DRAFT_BYTES + 1)
        if data:
            drafts[mid] = ((f.filename or mid)[:200], data)
    return drafts


@router.post("/guide/{code}/prereview", response_class=HTMLResponse)
def prereview_submit(request: Request, session: SessionDep, code: str,
                     files: Annotated[list[tuple[str, StarletteUpload]], Depends(_draft_files)],
                     phone: Annotated[str, Form(max_length=20)] = "",
                     situation: Annotated[list[str] | None, Form()] = None) -> Response:
    picked = dict(p[:130].partition(":")[::2] for p in (situation or [])[:20] if ":" in p)
    drafts = _drafts(files)
    try:
        limit_client(request)
        pcode = guide_prereview.submit(session, code, phone.strip(), picked, drafts)
    except EngineError as exc:
        session.rollback()
        detail = exc.extra["errors"][0]["reason"] if exc.extra.get("errors") else exc.detail
        return _prereview_form(request, session, code, picked, exc.status, detail, phone)
    return RedirectResponse(f"/guide/prereviews/{pcode}", status_code=303)


def _status_page(request: Request, session: Session, pcode: str, status_code: int = 200,
                 error: str | None = None) -> Response:
    try:
        p = guide_prereview.view(session, pcode)
    except EngineError as exc:
        return web.error_page(request, exc.status, "没有这个预审码", exc.detail)
    page = web.render(request, "guide_prereview_status.html", None, status_code=status_code, p=p, error=error)
    page.headers["Cache-Control"] = "private, no-store"
    return page


@router.get("/guide/prereviews/{pcode}", response_class=HTMLResponse)
def prereview_status(request: Request, session: SessionDep, pcode: str) -> Response:
    try:
        limit_client(request)
    except EngineError as exc:
        return web.error_page(request, exc.status, "请稍后再试", exc.detail)
    return _status_page(request, session, pcode[:16])


@router.post("/guide/prereviews/{pcode}/drafts", response_class=HTMLResponse)
def prereview_resubmit(request: Request, session: SessionDep, pcode: str,
                       files: Annotated[list[tuple[str, StarletteUpload]], Depends(_draft_files)]) -> Response:
    """重新上传 on the applicant's status page: the drafts marked 需修改 (or never sent)."""
    drafts = _drafts(files)
    try:
        limit_client(request)
        guide_prereview.resubmit(session, pcode[:16], drafts)
    except EngineError as exc:
        session.rollback()
        return _status_page(request, session, pcode[:16], exc.status, exc.said)
    return RedirectResponse(f"/guide/prereviews/{pcode[:16].upper()}", status_code=303)


@router.get("/ui/prereviews", response_class=HTMLResponse)
def prereview_list(request: Request, session: SessionDep,
                   code: Annotated[str, Query(max_length=16)] = "") -> Response:
    actor = web.require_actor(request, session)
    if code.strip():
        return RedirectResponse(f"/ui/prereviews/{code.strip().upper()}", status_code=303)
    return web.render(request, "guide_prereview_clerk.html", actor, items=guide_prereview.for_counter(session, actor),
                      p=None)


def _clerk_page(request: Request, session: Session, actor: Actor, pcode: str, status_code: int = 200,
                error: str | None = None) -> Response:
    try:
        p = guide_prereview.clerk_view(session, actor, pcode)
    except EngineError as exc:
        return web.error_page(request, exc.status, "无法打开预审", exc.detail)
    return web.render(request, "guide_prereview_clerk.html", actor, status_code=status_code, p=p, items=None,
                      error=error)


@router.get("/ui/prereviews/{pcode}", response_class=HTMLResponse)
def prereview_clerk(request: Request, session: SessionDep, pcode: str) -> Response:
    actor = web.require_actor(request, session)
    return _clerk_page(request, session, actor, pcode[:16])


@router.get("/ui/prereviews/{pcode}/drafts/{material_id}")
def prereview_draft(request: Request, session: SessionDep, pcode: str, material_id: str,
                    version: Annotated[int | None, Query(ge=1, le=1000)] = None) -> Response:
    """One draft (the latest, or an earlier ``version`` kept in the record)."""
    actor = web.require_actor(request, session)
    name, data = guide_prereview.draft_file(session, actor, pcode[:16], material_id[:64], version)
    kind = sniff(data[:16]) or "application/octet-stream"
    return Response(data, media_type=kind, headers={
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}"})


@router.post("/ui/prereviews/{pcode}/materials/{material_id}", response_class=HTMLResponse)
def prereview_comment(request: Request, session: SessionDep, pcode: str, material_id: str,
                      csrf: Annotated[str, Form(max_length=128)],
                      verdict: Annotated[str, Form(max_length=8)] = "",
                      comment: Annotated[str, Form(max_length=500)] = "") -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    try:
        guide_prereview.review(session, actor, pcode[:16], material_id[:64], verdict, comment)
    except EngineError as exc:
        session.rollback()
        detail = exc.extra["errors"][0]["reason"] if exc.extra.get("errors") else exc.detail
        return _clerk_page(request, session, actor, pcode[:16], exc.status, detail)
    return RedirectResponse(f"/ui/prereviews/{pcode[:16]}#m-{quote(material_id[:64])}", status_code=303)


@router.post("/ui/prereviews/{pcode}/case", response_class=HTMLResponse)
def prereview_intake(request: Request, session: SessionDep, pcode: str,
                     csrf: Annotated[str, Form(max_length=128)],
                     name: Annotated[str, Form(max_length=100)] = "",
                     kind: Annotated[str, Form(max_length=16)] = "person",
                     id_number: Annotated[str, Form(max_length=32)] = "",
                     form_token: Annotated[str, Form(max_length=64)] = "") -> Response:
    """收件: the pre-review becomes a case; the passed drafts are its first scans. The answer is
    the intake's own 收件成功 page (number, the query code shown once, the receipt)."""
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    if first := form_tokens.first_result(session, actor.id, form_token):
        return RedirectResponse(first["redirect"], status_code=303)
    raw = {k: v for k, v in {"name": name.strip(), "kind": kind, "id_number": id_number.strip()}.items() if v}
    try:
        applicant = Applicant.model_validate(raw)
        case, code = guide_prereview.to_case(session, actor, pcode[:16], applicant.model_dump(exclude_none=True))
    except ValidationError as exc:
        return _clerk_page(request, session, actor, pcode[:16], 422,
                           "；".join(e["reason"] for e in labels.validation_sentences(exc.errors())))
    except EngineError as exc:
        session.rollback()
        detail = exc.extra["errors"][0]["reason"] if exc.extra.get("errors") else exc.detail
        return _clerk_page(request, session, actor, pcode[:16], exc.status, detail)
    token = form_token if form_tokens.valid(form_token) else form_tokens.new()
    done = f"/ui/cases/new/done/{token}"
    shown = form_tokens.remember(session, actor.id, token, done, {"query_code": code}, number=case["number"])
    return RedirectResponse(shown["redirect"], status_code=303)
