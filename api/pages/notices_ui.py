"""The case page's print links: a notice or certificate PDF shown inline, for the browser to print.

The bytes are those stored when the document was drawn (a reprint is the same document); the
download is recorded in the case's history like any evidence download.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from api.deps import SessionDep
from api.pages import case_page, web
from api.routing import Router
from engine import scans

router = Router(pages=True)


@router.get("/ui/cases/{number}/evidence/{evidence_id}")
def print_document(number: str, evidence_id: int, request: Request, session: SessionDep) -> Response:
    actor = web.require_actor(request, session)
    case_page.visible_case(session, actor, number)
    d = scans.evidence_download(session, number, evidence_id, actor)
    if d.url is not None:
        return RedirectResponse(d.url, status_code=307, headers={"Cache-Control": "no-store"})
    return StreamingResponse(d.stream, media_type=d.media_type, headers={
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff", "ETag": f'"{d.sha256}"',
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(d.filename)}.pdf"})
