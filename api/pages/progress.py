"""The applicant's progress page: case number and query code in, status and dates out; at 办结 the
case's 一事一评 (the rating form, or the rating given)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from api.deps import SessionDep
from api.pages import progress_ticket, web
from api.pages.sealed import Refusal
from api.routes import public
from api.routing import Router
from api.schemas import Withdrawal
from engine import documents_read, evaluations, query_guard
from engine.errors import EngineError, InvalidInput

router = Router(pages=True)


@router.get("/progress", response_class=HTMLResponse)
def progress_page(request: Request, session: SessionDep, number: Annotated[str, Query(max_length=32)] = "",
                  rated: Annotated[int | None, Query(ge=1, le=5)] = None,
                  withdrawn: Annotated[bool, Query()] = False) -> Response:
    """The form; the 收件凭证's QR code brings the case number along (never the query code). After
    a lookup (or a rating, a withdrawal) that passed, the ticket it left shows the case here, so F5
    looks it up again instead of sending the form again; after one that was refused, why (once)."""
    number = number.strip()
    refused = progress_ticket.refusal(request, number)
    ticket = progress_ticket.ticket_for(request, number)
    done = f"感谢您的评价: {evaluations.LEVELS[rated]}。" if rated and refused is None else None
    if ticket is None:
        page = web.render(request, "progress.html", status_code=refused.status if refused else 200, result=None,
                          number=number, done=done, error=refused.detail if refused else None)
        page.headers.update(refused.headers() if refused else {})
        return _shown_once(request, page, refused)
    try:
        result = public.checked_progress(request, session, number, ticket.code, counted=ticket.counted)
        documents = documents_read.for_applicant(session, number, ticket.code)
        rating = evaluations.case_rating(session, number, ticket.code) if result.get("finished_at") else None
    except EngineError as exc:
        page = web.render(request, "progress.html", status_code=exc.status, result=None, number=number,
                          error=exc.said)
        page.headers.update(_retry_after(exc))
        return _shown_once(request, page, refused)
    if withdrawn and result.get("finished_at") and refused is None:
        done = "申请已撤回, 办件已结束。"
    page = web.render(request, "progress.html", status_code=refused.status if refused else 200, result=result,
                      number=number, done=done, documents=documents, rating=rating,
                      error=refused.detail if refused else None, **_rating_form())
    return _shown_once(request, page, refused)


def _shown_once(request: Request, page: Response, refused: Refusal | None) -> Response:
    if refused is not None:
        progress_ticket.REFUSED.clear(request, page)  # F5 shows the form (or the case), not the refusal again
    page.headers["Cache-Control"] = "no-store"  # what a case shows is not kept on a shared screen
    return page


@router.post("/progress", response_class=HTMLResponse)
def progress_query(request: Request, number: Annotated[str, Form()] = "",
                   code: Annotated[str, Form()] = "") -> Response:
    """POST keeps the query code out of URLs and logs; the API's limiters (per client, per case
    number) check it, so the page is no way around them. Either way the answer is a 303 to
    ``/progress?number=…``: a code that passes leaves a ticket that shows the case there
    (``progress_ticket``), a refusal leaves why, shown once; F5 there sends nothing again."""
    number, code = number.strip(), code.strip()
    if not 1 <= len(number) <= 32 or not 6 <= len(code) <= 32:
        return _refused(request, number[:32], InvalidInput("code", "请填写办件编号和查询码 (6 位以上)"))
    try:
        public.limit_client(request)
        query_guard.check_code(request.app.state.engine, number, code)
    except EngineError as exc:
        return _refused(request, number, exc)
    return _to_progress(request, number, code)


def _refused(request: Request, number: str, exc: EngineError, detail: str | None = None) -> Response:
    """303 back to the case's progress (or the bare form), saying why there once; nothing written.
    A wrong code or a lockout drops the ticket (no case shown); any other refusal (a 撤回 too late,
    a rating refused) leaves the case shown under why."""
    resp = RedirectResponse(f"/progress?{urlencode({'number': number})}" if number else "/progress",
                            status_code=303)
    retry = exc.extra.get("retry_after") if exc.status == 429 else None
    progress_ticket.refuse(request, resp, number, detail or exc.said, exc.status,
                           retry if isinstance(retry, int) else None, keep_ticket=exc.status not in (404, 429))
    return resp


def _to_progress(request: Request, number: str, code: str, **query: str) -> Response:
    """303 to the case's progress, with the ticket that shows it there (this request counted the
    lookup against the client's budget: the GET it leads to does not count it again)."""
    resp = RedirectResponse(f"/progress?{urlencode({'number': number, **query})}", status_code=303)
    progress_ticket.give(request, resp, number, code)
    return resp


def _rating_form() -> dict[str, Any]:
    return {"levels": evaluations.LEVELS, "reasons": evaluations.REASONS, "bad_levels": evaluations.BAD}


# A 差评's reasons: eight ticks and 500 characters, form-encoded, beside the query code.
router.allow_larger("/progress/rate", lambda: 16_384, uncredentialed=True)


@router.post("/progress/rate", response_class=HTMLResponse)
def progress_rate(request: Request, session: SessionDep, number: Annotated[str, Form(max_length=32)] = "",
                  code: Annotated[str, Form(max_length=32)] = "", level: Annotated[int, Form(ge=1, le=5)] = 0,
                  reasons: Annotated[list[str] | None, Form(max_length=8)] = None,
                  text: Annotated[str, Form(max_length=500)] = "") -> Response:
    """一事一评 at 办结, the query code proving the applicant (through the progress query's limiters);
    303 back to the form, so F5 rates nothing twice."""
    number, code = number.strip(), code.strip()
    try:
        if not 1 <= len(number) <= 32 or not 6 <= len(code) <= 32:
            raise InvalidInput("code", "请填写查询码")
        public.checked_progress(request, session, number, code)
        evaluations.rate_case(session, number, code, level, reasons or [], text)
    except EngineError as exc:
        session.rollback()
        return _refused(request, number[:32], exc)
    return _to_progress(request, number, code, rated=str(level))


def _retry_after(exc: EngineError) -> dict[str, str]:
    return {"Retry-After": str(exc.extra["retry_after"])} if exc.status == 429 and "retry_after" in exc.extra else {}


# The query code is the applicant's credential; a 2000-character reason, form-encoded, fits.
router.allow_larger("/progress/withdraw", lambda: public.WITHDRAWAL_BYTES, uncredentialed=True)


@router.post("/progress/withdraw", response_class=HTMLResponse)
def progress_withdraw(request: Request, session: SessionDep, number: Annotated[str, Form(max_length=32)] = "",
                      code: Annotated[str, Form(max_length=32)] = "",
                      reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """撤回 by the applicant, then 303 to the case's progress (F5 there sends nothing again); a
    second withdrawal sent anyway is refused and the page says so: nothing is written twice."""
    number, code, reason = number.strip(), code.strip(), reason.strip()
    if not 1 <= len(number) <= 32 or not 6 <= len(code) <= 32 or not reason:
        return _refused(request, number[:32], InvalidInput("reason", "请填写查询码和撤回原因"))
    try:
        public.withdraw_application(number, Withdrawal(code=code, reason=reason), request, session)
    except EngineError as exc:
        session.rollback()
        return _refused(request, number, exc, "该办件已不能撤回 (已撤回或已作出决定)" if exc.status == 409 else None)
    return _to_progress(request, number, code, withdrawn="1")


@router.post("/progress/document", response_class=Response)
def progress_document(request: Request, session: SessionDep, number: Annotated[str, Form(max_length=32)] = "",
                      code: Annotated[str, Form(max_length=32)] = "",
                      document: Annotated[str, Form(max_length=64)] = "") -> Response:
    """The applicant downloads a notice or certificate with the query code (through the same
    limiters as the progress query): the stored PDF, the one that was issued."""
    number, code, document = number.strip(), code.strip(), document.strip()
    try:
        if not 1 <= len(number) <= 32 or not 6 <= len(code) <= 32 or not document:
            raise InvalidInput("document", "请选择文书并填写查询码")
        public.get_progress(number, request, session, code)
        d = documents_read.applicant_download(session, number, code, document)
    except EngineError as exc:
        return _refused(request, number[:32], exc)
    return StreamingResponse(d.stream, media_type=d.media_type, headers={
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff", "ETag": f'"{d.sha256}"',
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(d.filename)}"})
