"""The self-service booth (/kiosk): a full-screen touch page for the booth's own sign-in.

One page walks the applicant through identify → item → 情形 → capture → submit in the browser
(static/kiosk.js; nothing is kept after an idle reset), reading the public guide JSON; the
submission is one multipart POST, answered (PRG) by the result page with the 收件凭证 to print,
which is shown for a few minutes only. The booth's 视频帮办 button calls the supervising counter
(video.help); its clerks see and answer the call at /ui/help.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from api.deps import SessionDep
from api.pages import web
from api.problems import problem
from api.routing import Router
from api.schemas import Applicant
from api.security_headers import POLICY, VIDEO_DEVICES, policy
from core.settings import get_settings
from engine import form_tokens, kiosk, labels
from engine.actors import Actor
from engine.errors import EngineError, InvalidInput
from video import help as video_help

router = Router(pages=True)
NO_STORE = {"Cache-Control": "no-store"}

router.allow_larger(r"^/kiosk/cases$", lambda: kiosk.MAX_BODY_BYTES)


@router.get("/kiosk", response_class=HTMLResponse)
def kiosk_home(request: Request, session: SessionDep) -> Response:
    actor = web.require_actor(request, session)
    b = kiosk.booth(session, actor)
    page = web.render(request, "kiosk.html", actor, booth=b, items=kiosk.items(session, b),
                      idle=60, token=form_tokens.new())
    # The booth's document camera: this page captures the materials (getUserMedia).
    page.headers.update({**NO_STORE, "Permissions-Policy": VIDEO_DEVICES})
    if b.card_reader_origin:  # its ID-card reader service, that origin and no other
        page.headers["Content-Security-Policy"] = policy({**POLICY, "connect-src": f"'self' {b.card_reader_origin}"})
    return page


def _problem(exc: EngineError) -> JSONResponse:
    """A refusal of the booth's submission: RFC 9457 problem details as the API answers them,
    ``errors`` naming the field and the reason (the page shows the first reason)."""
    extra = dict(exc.extra)
    if not extra.get("errors"):
        extra["errors"] = [{"field": "", "reason": exc.detail}]
    return problem(exc.status, exc.title, exc.detail, exc.type, NO_STORE, **extra)


@router.post("/kiosk/cases")
def kiosk_submit(request: Request, session: SessionDep,
                 csrf: Annotated[str, Form(max_length=128)],
                 form_token: Annotated[str, Form(max_length=64)] = "",
                 item: Annotated[str, Form(max_length=64)] = "",
                 name: Annotated[str, Form(max_length=100)] = "",
                 id_number: Annotated[str, Form(max_length=32)] = "",
                 phone: Annotated[str, Form(max_length=20)] = "",
                 situation: Annotated[list[str] | None, Form()] = None,
                 material: Annotated[list[str] | None, Form()] = None,
                 captures: Annotated[list[UploadFile] | None, File()] = None) -> Response:
    """One capture per ``material`` entry, in order (several for a material of several pages).
    Answers 303 to the result page; a refusal is JSON naming the field, for the page to show."""
    actor = web.require_actor(request, session)
    try:
        web.check_csrf(request, csrf)
    except EngineError as exc:
        return _problem(EngineError(exc.detail, errors=[{"field": "csrf", "reason": exc.detail}]))
    if first := form_tokens.first_result(session, actor.id, form_token):
        return RedirectResponse(first["redirect"], status_code=303)
    answers = dict(p[:130].partition(":")[::2] for p in (situation or [])[:20] if ":" in p)
    shots: dict[str, list[tuple[str, bytes]]] = {}
    for mid, f in zip((material or [])[:200], (captures or [])[:200], strict=False):
        data = f.file.read(kiosk.MAX_CAPTURE_BYTES + 1)
        if len(data) > kiosk.MAX_CAPTURE_BYTES:
            field = f"captures.{mid[:64]}"
            reason = "拍摄的图片过大"
            return problem(413, "请求体过大", f"{field}: {reason}", headers=NO_STORE,
                           errors=[{"field": field, "reason": reason}])
        shots.setdefault(mid[:64], []).append((f.filename or f"{mid[:64]}.jpg", data))
    raw = {k: v.strip() for k, v in {"name": name, "kind": "person", "id_number": id_number.upper(),
                                     "phone": phone}.items() if v.strip()}
    try:
        applicant = Applicant.model_validate(raw)
        case, code = kiosk.submit(session, actor, item, applicant.model_dump(exclude_none=True), answers, shots)
    except ValidationError as exc:
        err = exc.errors()[0]
        said = labels.validation_sentences([err])[0]  # the field by its label, for the screen
        path = ".".join(str(p) for p in err["loc"]) or "applicant"
        return _problem(InvalidInput(path, f"{said['field']}: {said['reason']}"))
    except EngineError as exc:
        session.rollback()
        return _problem(exc)
    token = form_token if form_tokens.valid(form_token) else form_tokens.new()
    done = f"/kiosk/done/{token}"
    shown = form_tokens.remember(session, actor.id, token, done, {"query_code": code}, number=case["number"],
                                 item=case["item_code"], at=case["created_at"].isoformat())
    return RedirectResponse(shown["redirect"], status_code=303)


def _result(request: Request, session: SessionDep, token: str) -> tuple[Actor, dict[str, str] | None]:
    """The booth's result for ``token``, or None once it is no longer shown (or never was)."""
    actor = web.require_actor(request, session)
    kiosk.booth(session, actor)
    first = form_tokens.first_result(session, actor.id, token[:64])
    if not first or "number" not in first or not kiosk.fresh(first.get("at")):
        return actor, None
    return actor, first


def _booth_page(request: Request, session: SessionDep, actor: Actor, name: str, *, status_code: int = 200,
                headers: dict[str, str] | None = None, **ctx: object) -> Response:
    """A booth page (its bar, idle reset and 返回首页), never cached."""
    b = kiosk.booth(session, actor)
    page = web.render(request, name, actor, status_code=status_code, booth_name=b.name,
                      idle=ctx.pop("idle", kiosk.RESULT_SECONDS // 3), **ctx)
    page.headers.update({**NO_STORE, **(headers or {})})
    return page


def _gone(request: Request, session: SessionDep, actor: Actor, *, framed: bool = False) -> Response:
    """An expired (or unknown) result: a booth page saying so, not the site's 404."""
    return _booth_page(request, session, actor, "kiosk_gone.html", status_code=404,
                       headers=FRAMEABLE if framed else None, minutes=kiosk.RESULT_SECONDS // 60)


# The receipt and its wait page are shown in the receipt viewer's frame, on this origin only.
FRAMEABLE = {"X-Frame-Options": "SAMEORIGIN",
             "Content-Security-Policy": policy({**POLICY, "frame-ancestors": "'self'"})}


def _viewer_policy() -> str:
    """The viewer frames the receipt: this origin, or the object store a presigned URL points at."""
    s = get_settings()
    store = f" {'https' if s.s3_secure else 'http'}://{s.s3_endpoint}" if s.object_store == "s3" else ""
    return policy({**POLICY, "frame-src": "'self'" + store})


@router.get("/kiosk/done/{token}", response_class=HTMLResponse)
def kiosk_done(request: Request, session: SessionDep, token: str) -> Response:
    actor, first = _result(request, session, token)
    if first is None:
        return _gone(request, session, actor)
    view = kiosk.result_view(session, actor, first["number"])
    page = web.render(request, "kiosk_done.html", actor, v=view, code=first.get("query_code", ""),
                      token=token, idle=kiosk.RESULT_SECONDS // 3)
    page.headers.update(NO_STORE)
    return page


@router.get("/kiosk/receipt/{token}/view", response_class=HTMLResponse)
def kiosk_receipt_view(request: Request, session: SessionDep, token: str) -> Response:
    """The sealed 收件凭证 inside a booth page: the PDF in a frame, the booth's bar, idle reset and
    返回首页 around it (the booth never leaves its own pages)."""
    actor, first = _result(request, session, token)
    if first is None:
        return _gone(request, session, actor)
    return _booth_page(request, session, actor, "kiosk_receipt.html", token=token,
                       headers={"Content-Security-Policy": _viewer_policy()})


@router.get("/kiosk/receipt/{token}")
def kiosk_receipt(request: Request, session: SessionDep, token: str) -> Response:
    """The 收件凭证 PDF to print, once drawn; until then a page that looks again shortly."""
    actor, first = _result(request, session, token)
    if first is None:
        return _gone(request, session, actor, framed=True)
    evidence = kiosk.receipt(session, actor, first["number"])
    if evidence is None:
        return _booth_page(request, session, actor, "kiosk_wait.html", status_code=202,
                           headers={**FRAMEABLE, "Refresh": "2"})
    d = kiosk.receipt_download(session, actor, first["number"], evidence)
    if d.url is not None:  # an object store's short-lived presigned URL
        return RedirectResponse(d.url, status_code=307, headers=NO_STORE)
    return StreamingResponse(d.stream, media_type=d.media_type, headers={
        **NO_STORE, **FRAMEABLE, "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(d.filename)}.pdf"})


# -- 视频帮办: the booth calls its supervising counter --------------------------------------
@router.post("/kiosk/help")
def kiosk_help(request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=128)]) -> Response:
    """Open (or rejoin) the booth's call and enter its room page."""
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    _, token = video_help.open_call(session, actor)
    return RedirectResponse(f"/video/join?t={token}", status_code=303, headers=NO_STORE)


@router.get("/ui/help", response_class=HTMLResponse)
def help_calls(request: Request, session: SessionDep) -> Response:
    """The supervising counter's waiting calls from its booths (refreshes itself)."""
    actor = web.require_actor(request, session)
    page = web.render(request, "help_calls.html", actor, calls=video_help.waiting(session, actor))
    page.headers.update({**NO_STORE, "Refresh": "10"})
    return page


@router.post("/ui/help/{room_id}/answer")
def help_answer(room_id: str, request: Request, session: SessionDep,
                csrf: Annotated[str, Form(max_length=128)]) -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    token = video_help.answer(session, room_id[:32], actor)
    return RedirectResponse(f"/video/join?t={token}", status_code=303, headers=NO_STORE)
