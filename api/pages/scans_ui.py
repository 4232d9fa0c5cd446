"""Scanned pages on the case page: thumbnails and upload.

The pages call the same engine functions as the documents API, with the cookie session's actor,
so the rules (who may read, who may upload, file checks, object first and row after) stay there.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from api.deps import SessionDep
from api.pages import case_page, web
from api.routing import Router
from core.settings import get_settings
from engine import scans
from engine.errors import EngineError
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
    actor = web.require_actor(request, session)
    case_page.visible_case(session, actor, number)
    d = scans.page_download(session, number, material_id, page_id, actor, thumbnail=True, store=store)
    if d.url is not None:  # object store hands out a short-lived presigned URL
        return RedirectResponse(d.url, status_code=307, headers={"Cache-Control": "no-store"})
    return StreamingResponse(d.stream, media_type=d.media_type,
                             headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff",
                                      "Content-Disposition": f"inline; filename*=UTF-8''{quote(d.filename)}"})


@router.post("/ui/cases/{number}/materials/{material_id}/pages")
def upload(number: str, material_id: str, request: Request, session: SessionDep,
           csrf: Annotated[str, Form(max_length=128)], version: Annotated[int, Form(ge=1)],
           file: UploadFile, store: StoreDep) -> Response:
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    case_page.visible_case(session, actor, number)
    try:
        scans.add_page(session, number, material_id, file.file, file.filename, actor,
                       store=store, expected_version=version)
    except EngineError as exc:
        session.rollback()
        return case_page.render_case(request, session, actor, number, exc.status, exc.detail)
    return RedirectResponse(f"/ui/cases/{number}", status_code=303)
