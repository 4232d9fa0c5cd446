"""Scanned pages on the case page: thumbnails opening the page at full size, upload, withdraw with
a reason, reorder.

The pages call the same engine functions as the documents API, with the cookie session's actor,
so the rules (who may read, who may upload, file checks, object first and row after) stay there.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlmodel import Session

from api.deps import SessionDep
from api.pages import case_page, web
from api.routing import Router
from core.settings import get_settings
from engine import scans
from engine.actors import Actor
from engine.errors import EngineError, InvalidInput
from storage.object_factory import get_store

router = Router(pages=True)
UPLOAD_PATH = r"/ui/cases/[^/]+/materials/[^/]+/pages"


def object_store() -> Any:
    """The object store (a dependency, so tests can hand in one of their own)."""
    return get_store()


StoreDep = Annotated[Any, Depends(object_store)]


# Uploads may exceed the global body limit up to ``max_upload_bytes`` (multipart overhead on top).
router.allow_larger(UPLOAD_PATH, lambda: get_settings().max_upload_bytes + 65_536)


@router.get("/ui/cases/{number}/materials/{material_id}/pages/{page_id}/thumbnail")
def thumbnail(number: str, material_id: str, page_id: int, request: Request, session: SessionDep,
              store: StoreDep) -> Response:
    return _page(number, material_id, page_id, request, session, store, thumbnail=True)


@router.get("/ui/cases/{number}/materials/{material_id}/pages/{page_id}")
def full_page(number: str, material_id: str, page_id: int, request: Request, session: SessionDep,
              store: StoreDep) -> Response:
    """The page at full size (opened from its thumbnail); the download is recorded in the history."""
    return _page(number, material_id, page_id, request, session, store, thumbnail=False)


def _page(number: str, material_id: str, page_id: int, request: Request, session: Session, store: Any,
          thumbnail: bool) -> Response:
    actor = web.require_actor(request, session)
    case_page.visible_case(session, actor, number)
    d = scans.page_download(session, number, material_id, page_id, actor, thumbnail=thumbnail, store=store)
    if d.url is not None:  # object store hands out a short-lived presigned URL
        return RedirectResponse(d.url, status_code=307, headers={"Cache-Control": "no-store"})
    return StreamingResponse(d.stream, media_type=d.media_type,
                             headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff",
                                      "Content-Disposition": f"inline; filename*=UTF-8''{quote(d.filename)}"})


@router.post("/ui/cases/{number}/materials/{material_id}/pages")
def upload(number: str, material_id: str, request: Request, session: SessionDep,
           csrf: Annotated[str, Form(max_length=128)], version: Annotated[int, Form(ge=1)],
           file: UploadFile, store: StoreDep, form_token: Annotated[str, Form(max_length=64)] = "") -> Response:
    return _act(request, session, csrf, number, form_token, lambda actor: scans.add_page(
        session, number, material_id, file.file, file.filename, actor, store=store, expected_version=version),
        "upload")


@router.post("/ui/cases/{number}/materials/{material_id}/pages/{page_id}/withdraw")
def withdraw(number: str, material_id: str, page_id: int, request: Request, session: SessionDep,
             csrf: Annotated[str, Form(max_length=128)], version: Annotated[int, Form(ge=1)],
             reason: Annotated[str, Form(max_length=500)] = "",
             form_token: Annotated[str, Form(max_length=64)] = "") -> Response:
    """撤回 a page, with the reason (kept in the history)."""
    def act(actor: Actor) -> None:
        if not reason.strip():
            raise InvalidInput("reason", "撤回扫描件须填写理由")
        scans.withdraw_page(session, number, material_id, page_id, actor, version, reason.strip())
    return _act(request, session, csrf, number, form_token, act, "withdraw_page")


@router.post("/ui/cases/{number}/materials/{material_id}/pages/order")
def reorder(number: str, material_id: str, request: Request, session: SessionDep,
            csrf: Annotated[str, Form(max_length=128)], version: Annotated[int, Form(ge=1)],
            order: Annotated[str, Form(max_length=2000)],
            form_token: Annotated[str, Form(max_length=64)] = "") -> Response:
    """The slot's pages in a new order: ``order`` lists every page id, comma-separated (the drag on
    the page and its move buttons both send it)."""
    def act(actor: Actor) -> None:
        try:
            ids = [int(x) for x in order.split(",") if x.strip()]
        except ValueError:
            raise InvalidInput("order", "页面顺序须为页面编号的列表") from None
        scans.reorder_pages(session, number, material_id, ids, actor, version)
    return _act(request, session, csrf, number, form_token, act, "reorder_pages")


def _act(request: Request, session: Session, csrf: str, number: str, form_token: str, act: Any,
         done: str) -> Response:
    """A scan form: the action, then back to the case page (303); the same form sent again (F5
    after an error page, Back and submit) is sent to the first result and uploads nothing."""
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
    url = f"/ui/cases/{number}?done={done}"
    return web.done(session, actor.id, form_token, url)
