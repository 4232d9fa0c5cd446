"""The applicant's progress page: case number and query code in, status and dates out; at 办结 the
case's 一事一评 (the rating form, or the rating given)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from api.deps import SessionDep
from api.pages import web
from api.routes import public
from api.routing import Router
from api.schemas import Withdrawal
from engine import documents_read, evaluations
from engine.errors import EngineError, InvalidInput

router = Router(pages=True)


@router.get("/progress", response_class=HTMLResponse)
def progress_form(request: Request, number: Annotated[str, Query(max_length=32)] = "",
                  rated: Annotated[int | None, Query(ge=1, le=5)] = None) -> Response:
    """The form; the 收件凭证's QR code brings the case number along (never the query code)."""
    done = f"感谢您的评价: {evaluations.LEVELS[rated]}。" if rated else None
    return web.render(request, "progress.html", result=None, number=number.strip(), done=done)


@router.post("/progress", response_class=HTMLResponse)
def progress_query(request: Request, session: SessionDep, number: Annotated[str, Form()] = "",
                   code: Annotated[str, Form()] = "") -> Response:
    """POST keeps the query code out of URLs and logs; the API's limiters (per client, per case
    number) and lookup are reused, so the page is no way around them."""
    number, code = number.strip(), code.strip()
    error, status, result, headers = None, 200, None, {}
    documents: list[dict[str, Any]] = []
    rating = None
    if not 1 <= len(number) <= 32 or not 6 <= len(code) <= 32:
        error, status = "请填写办件编号和查询码 (6 位以上)", 422
    else:
        try:
            result = public.checked_progress(request, session, number, code)
            documents = documents_read.for_applicant(session, number, code)
            rating = evaluations.case_rating(session, number, code) if result.get("finished_at") else None
        except EngineError as exc:
            error, status, headers = exc.detail, exc.status, _retry_after(exc)
    page = web.render(request, "progress.html", status_code=status, result=result, number=number, error=error,
                      documents=documents if result else None, rating=rating, **_rating_form())
    page.headers.update(headers)
    return page


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
        page = web.render(request, "progress.html", status_code=exc.status, result=None, number=number,
                          error=exc.detail)
        page.headers.update(_retry_after(exc))
        return page
    return RedirectResponse(f"/progress?number={quote(number)}&rated={level}", status_code=303)


def _retry_after(exc: EngineError) -> dict[str, str]:
    return {"Retry-After": str(exc.extra["retry_after"])} if exc.status == 429 and "retry_after" in exc.extra else {}


# The query code is the applicant's credential; a 2000-character reason, form-encoded, fits.
router.allow_larger("/progress/withdraw", lambda: public.WITHDRAWAL_BYTES, uncredentialed=True)


@router.post("/progress/withdraw", response_class=HTMLResponse)
def progress_withdraw(request: Request, session: SessionDep, number: Annotated[str, Form(max_length=32)] = "",
                      code: Annotated[str, Form(max_length=32)] = "",
                      reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """撤回 by the applicant. Pressing F5 here resends the form: the case is already withdrawn, so
    the second one is refused and the page says so; nothing is written twice."""
    number, code, reason = number.strip(), code.strip(), reason.strip()
    if not 1 <= len(number) <= 32 or not 6 <= len(code) <= 32 or not reason:
        return web.render(request, "progress.html", status_code=422, result=None, number=number,
                          error="请填写查询码和撤回原因")
    try:
        result = public.withdraw_application(number, Withdrawal(code=code, reason=reason), request, session)
    except EngineError as exc:
        session.rollback()
        detail = "该办件已不能撤回 (已撤回或已作出决定)" if exc.status == 409 else exc.detail
        page = web.render(request, "progress.html", status_code=exc.status, result=None, number=number,
                          error=detail)
        page.headers.update(_retry_after(exc))
        return page
    return web.render(request, "progress.html", result=result, number=number, done="申请已撤回, 办件已结束。",
                      **_rating_form())


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
        page = web.render(request, "progress.html", status_code=exc.status, result=None, number=number,
                          error=exc.detail)
        page.headers.update(_retry_after(exc))
        return page
    return StreamingResponse(d.stream, media_type=d.media_type, headers={
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff", "ETag": f'"{d.sha256}"',
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(d.filename)}"})
