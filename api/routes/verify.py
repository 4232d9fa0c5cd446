"""Public certificate verification (扫码验证) and the clerks' certificate list and download."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from fastapi import Response
from fastapi.responses import HTMLResponse

from api.contract import problems
from api.deps import ActorDep, SessionDep
from api.models import CertificateList, binary
from api.routing import Router
from core import clock
from engine import certificates
from engine.advance import case_number, load_case
from engine.errors import Forbidden
from engine.scans import read_evidence

router = Router(tags=["certificates"])

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>证照核验 {number}</title>
<link rel="stylesheet" href="/static/verify.css"></head>
<body><h1>政务服务证照核验</h1><p class="v {cls}">{verdict}</p>{details}
<p><small>核验时间 {checked}</small></p></body></html>"""


@router.get("/verify/{number}", response_class=HTMLResponse, include_in_schema=False)
def verify(number: str, session: SessionDep) -> HTMLResponse:
    """The page a certificate's QR code opens: genuine and current, or not (no personal data)."""
    cert = certificates.find(session, number)
    checked = f"{clock.local(clock.now()):%Y-%m-%d %H:%M}（{clock.zone_label()}）"
    if cert is None:
        body = PAGE.format(number=html.escape(number), cls="bad", checked=checked,
                           verdict="未查到该证照: 编号不存在, 证照可能是伪造的", details="")
        return HTMLResponse(body, status_code=404)
    ok, verdict = certificates.status(cert, clock.today())
    rows = [("证照名称", cert.title), ("证照编号", cert.number), ("持证主体", cert.holder),
            ("发证单位", certificates.issuer(session, cert)),
            ("发证日期", clock.local_date(cert.issued_at).isoformat()),
            ("有效期至", cert.valid_until.isoformat() if cert.valid_until else "长期"),
            ("文件指纹 (SHA-256)", cert.sha256)]
    details = "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
                               for k, v in rows) + "</dl>"
    return HTMLResponse(PAGE.format(number=html.escape(number), cls="ok" if ok else "bad",
                                    verdict=verdict, details=details, checked=checked))


@router.get("/api/v1/cases/{number}/certificates", response_model=CertificateList)
def list_certificates(number: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """列出办件的证照"""
    case = load_case(session, number)
    if "supervisor" not in actor.roles and actor.counter_id not in case["parties"].values():
        raise Forbidden("本窗口未参与该案件", missing=["counter"])
    rows = certificates.of_case(session, case["id"])
    return {"number": number, "certificates": [
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
