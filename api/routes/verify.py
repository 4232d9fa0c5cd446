"""Verification (证照核验): a certificate's or notice's record and electronic signature, by number or
by uploading the PDF; and the clerks' certificate list and download.

Public: the page a certificate's QR code opens, the JSON behind it, and an upload that checks
any PDF's signature against this platform's seals. Checking is CPU work on outside input: it runs
in a worker process (``engine.seals``), and uploads have a size cap and a budget per client.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Body, File, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from api.clientaddr import client_address
from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.models import CertificateList, FileVerification, NumberVerification, binary
from api.pages import web
from api.routes.public import RateLimited
from api.routing import Router
from core import clock
from core.settings import get_settings
from engine import certificates, seals, verification
from engine.advance import case_number, load_case
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.ratelimit import retry_after
from engine.scans import read_evidence

router = Router(tags=["certificates"])
pages = Router(pages=True)

MULTIPART_OVERHEAD = 64 * 1024


def _limit(request: Request) -> None:
    wait = request.app.state.verify_limiter.hit(client_address(request), get_settings().verify_rate_per_minute)
    if wait is not None:
        seconds = retry_after(wait)
        raise RateLimited(f"核验过于频繁, 请 {seconds} 秒后再试", retry_after=seconds)


def _signature(report: seals.VerifyReport) -> dict[str, Any]:
    return {"valid": report.valid, "intact": report.intact, "signer": report.signer, "unit_id": report.unit_id,
            "unit": report.unit, "signed_at": clock.local(report.signed_at) if report.signed_at else None,
            "sha256": report.sha256, "reason": report.reason}


def _record(record: seals.DocRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"kind": record.kind, "number": record.number, "title": record.title, "holder": record.holder,
            "issued_at": clock.local(record.issued_at), "status": record.status}


def _number_view(check: verification.NumberCheck) -> dict[str, Any]:
    return {"number": check.number, "found": check.record is not None, "valid": check.valid, "reason": check.reason,
            "issuer": check.issuer, "valid_until": check.valid_until, "record": _record(check.record),
            "signature": _signature(check.signature) if check.signature else None}


def _checked() -> str:
    return f"{clock.local(clock.now()):%Y-%m-%d %H:%M}（{clock.zone_label()}）"


@router.get("/api/v1/verify/{number}", response_model=NumberVerification, responses=problems(404))
def verify_number(number: str, session: SessionDep) -> dict[str, Any]:
    """核验证照或文书编号"""
    check = verification.check_number(session, number[:64])
    if check.record is None:
        raise NotFound(f"未查到编号 {number[:64]}: 本平台没有签发过这个证照或文书")
    return _number_view(check)


router.allow_larger(r"/api/v1/verify", lambda: seals.MAX_VERIFY_BYTES, uncredentialed=True)


# The PDF as the raw body; any other binary type names the same bytes (clients that only send
# application/octet-stream).
PDF_BODY = {"requestBody": {"required": True, "content": {
    t: {"schema": {"type": "string", "format": "binary", "minLength": 1, "description": "要核验的 PDF 文件"}}
    for t in ("application/pdf", "application/octet-stream")}}}


@router.post("/api/v1/verify", response_model=FileVerification, responses=problems(429), openapi_extra=PDF_BODY)
def verify_file(request: Request, session: SessionDep,
                data: Annotated[bytes, Body(media_type="application/pdf", description="要核验的 PDF 文件")]
                ) -> dict[str, Any]:
    """核验 PDF 文件的电子签章"""
    _limit(request)
    if not data:
        raise InvalidInput("body", "请求体为空: 请上传 PDF 文件")
    report = seals.verify_pdf(data, session)
    return {"signature": _signature(report), "record": _record(report.record)}


@pages.get("/verify", response_class=HTMLResponse)
def verify_upload_form(request: Request) -> Response:
    return web.render(request, "verify.html", check=None, report=None, rows=[], checked=_checked(),
                      number="", error=None)


@pages.get("/verify/{number}", response_class=HTMLResponse)
def verify_page(number: str, request: Request, session: SessionDep) -> Response:
    """The page a certificate's QR code opens: genuine and current, signed and unchanged, or not."""
    check = verification.check_number(session, number[:64])
    rows: list[tuple[str, str]] = []
    if check.record is not None:
        r = check.record
        rows = [("名称", r.title), ("编号", r.number), ("持证主体" if r.kind == "certificate" else "申请人", r.holder),
                ("签发单位", check.issuer), ("签发日期", clock.local_date(r.issued_at).isoformat())]
        if r.kind == "certificate":
            rows.append(("有效期至", check.valid_until))
        rows.append(("状态", r.status))
    report_rows = seals.report_rows(check.signature)[1:6] if check.signature else []
    return web.render(request, "verify.html", status_code=200 if check.record else 404, check=check,
                      report=check.signature, rows=rows, signature_rows=report_rows, checked=_checked(),
                      number=number[:64], error=None)


pages.allow_larger(r"/verify", lambda: seals.MAX_VERIFY_BYTES + MULTIPART_OVERHEAD, uncredentialed=True)


@pages.post("/verify", response_class=HTMLResponse)
def verify_upload(request: Request, session: SessionDep, file: Annotated[UploadFile, File()]) -> Response:
    """A PDF uploaded on the page: its signature and the platform's record of exactly those bytes."""
    try:
        _limit(request)
    except RateLimited as exc:
        page = web.render(request, "verify.html", status_code=429, check=None, report=None, rows=[],
                          checked=_checked(), number="", error=exc.detail)
        page.headers["Retry-After"] = str(exc.extra["retry_after"])
        return page
    data = file.file.read(seals.MAX_VERIFY_BYTES + 1)
    if not data or len(data) > seals.MAX_VERIFY_BYTES:
        error = "请选择 PDF 文件" if not data else f"文件超过 {seals.MAX_VERIFY_BYTES // 1024 // 1024} MB"
        return web.render(request, "verify.html", status_code=422 if not data else 413, check=None, report=None,
                          rows=[], checked=_checked(), number="", error=error)
    report = seals.verify_pdf(data, session)
    return web.render(request, "verify.html", check=None, report=report, rows=[],
                      signature_rows=seals.report_rows(report), checked=_checked(), number="",
                      filename=file.filename or "", error=None)


@router.get("/api/v1/cases/{number}/certificates", response_model=CertificateList)
def list_certificates(number: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """列出办件的证照"""
    case = load_case(session, number)
    if "supervisor" not in actor.roles and actor.counter_id not in case["parties"].values():
        raise Forbidden("本窗口未参与该办件", missing=["counter"])
    rows = certificates.of_case(session, case["id"])
    return {"next_cursor": None, "items": [
        {"number": r.number, "title": r.title, "issued_at": r.issued_at, "valid_until": r.valid_until,
         "counter": r.counter_id, "sha256": r.sha256, "revoked": r.revoked_at is not None,
         "pdf": f"/api/v1/certificates/{r.number}/pdf", "verify": f"/verify/{r.number}"}
        for r in rows]}


@router.get("/api/v1/certificates/{number}/pdf", response_class=Response,
            responses={**binary("application/pdf", description="证照 PDF"), **problems(503)})
def get_certificate_pdf(number: str, session: SessionDep, actor: ActorDep) -> Response:
    """下载证照 PDF"""
    cert = certificates.get(session, number)
    list_certificates(case_number(session, cert.case_id), session, actor)  # the same visibility rule
    return Response(b"".join(read_evidence(cert.bucket, cert.object_key)), media_type="application/pdf",
                    headers={"Content-Disposition": f"inline; filename*=UTF-8''{quote(number)}.pdf"})
