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
from api.pages.workbench import Csrf, FormToken
from api.routing import Router
from engine import document_drawing, documents, documents_read, scans

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


@router.get("/ui/cases/{number}/print/{kind}")
def print_latest(number: str, kind: str, request: Request, session: SessionDep) -> Response:
    """The newest notice of a kind: its PDF once drawn; while it is being drawn a page that looks
    again in a few seconds; a 收件凭证 that waits for the case to leave intake, a button to draw it now."""
    actor = web.require_actor(request, session)
    ready = [d for d in documents_read.with_evidence(session, number, actor) if d["kind"] == kind]
    if ready and ready[-1]["evidence_id"]:
        return RedirectResponse(f"/ui/cases/{quote(number)}/evidence/{ready[-1]['evidence_id']}", status_code=303)
    title = ready[-1]["title"] if ready else documents.title_of(kind)  # the item's own word, as issued
    if not ready:
        return web.render(request, "error.html", actor, status_code=404, title=title, detail="该办件尚无此类文书")
    waits = bool(documents.waiting(session, case_page.visible_case(session, actor, number)["id"], kind))
    page = web.render(request, "print_wait.html", actor, status_code=202, title=title, number=number, kind=kind,
                      waits=waits)
    if not waits:
        page.headers["Refresh"] = "3"
    return page


@router.post("/ui/cases/{number}/print/{kind}")
def draw_now(number: str, kind: str, request: Request, session: SessionDep, csrf: Csrf,
             form_token: FormToken = "") -> Response:
    """出具: draw the notice now (the 收件凭证 with the pages scanned so far), then 303 to print it.
    The form sent again (Back and submit, a double click) draws nothing and goes where the first went."""
    actor = web.require_actor(request, session)
    web.check_csrf(request, csrf)
    if again := web.sent_before(session, actor.id, form_token):
        return again
    document_drawing.request_drawing(session, number, actor, kind)
    url = f"/ui/cases/{quote(number)}/print/{quote(kind)}"
    return web.done(session, actor.id, form_token, url)
