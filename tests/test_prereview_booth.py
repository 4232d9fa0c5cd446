"""要件预审 and the self-service booth, on SQLite and PostgreSQL (the `demo` fixture): drafts a
clerk comments per material and takes in as a case; the booth's submission at its supervising
counter, its refusals as problem details, and its 收件凭证 drawn by the jobs and served as a PDF."""

from __future__ import annotations

import secrets

import pytest
from conftest import Demo, origin_of, page_login, run_jobs
from fastapi.testclient import TestClient

from storage.db import session_scope

# Drafts, captures and drawn documents go to this test's own folder.
pytestmark = pytest.mark.usefixtures("objects")


def _png() -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (240, 240, 240)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_prereview_drafts_a_clerks_comments_then_a_case_with_the_passed_drafts(
        demo: Demo) -> None:
    answers = {"filing_kind": "worker", "agent": "self"}
    drafts = {mid: {"file_name": f"{mid}.png", "content_base64": _png()} for mid in ("filing_form", "work_proof")}
    wrong = demo.client.post("/api/v1/guide/prereviews", json={
        "item_code": "YDJYBA", "phone": "13800138000", "situation": answers,
        "drafts": {**drafts, "referral": drafts["filing_form"]}})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "drafts.referral"
    r = demo.client.post("/api/v1/guide/prereviews", json={
        "item_code": "YDJYBA", "phone": "13800138000", "situation": answers, "drafts": drafts})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    seen = demo.client.get(f"/api/v1/guide/prereviews/{code}").json()
    assert seen["case_number"] is None and seen["status"] == "open"  # no case number, no clock
    assert [(m["id"], m["uploaded"]) for m in seen["materials"]] == [
        ("filing_form", True), ("insured_id", False), ("work_proof", True)]
    clerk = {"Authorization": f"Bearer {demo.tokens['陈静']}"}
    anonymous = demo.client.post(f"/api/v1/guide/prereviews/{code}/materials/work_proof", json={"verdict": "ok"})
    assert anonymous.status_code == 401
    redo = demo.client.post(f"/api/v1/guide/prereviews/{code}/materials/filing_form",
                            json={"verdict": "redo"}, headers=clerk)
    assert redo.status_code == 422 and redo.json()["errors"][0]["field"] == "comment"
    demo.client.post(f"/api/v1/guide/prereviews/{code}/materials/filing_form",
                     json={"verdict": "redo", "comment": "备案表未签名"}, headers=clerk)
    seen = demo.client.post(f"/api/v1/guide/prereviews/{code}/materials/work_proof",
                            json={"verdict": "ok"}, headers=clerk).json()
    assert {m["id"]: (m["verdict_label"], m["comment"]) for m in seen["materials"] if m["uploaded"]} == {
        "filing_form": ("需修改", "备案表未签名"), "work_proof": ("合格", None)}
    made = demo.client.post(f"/api/v1/guide/prereviews/{code}/case", headers=clerk, json={
        "applicant": {"name": "王五", "kind": "person", "id_number": "11010519491231002X"}})
    assert made.status_code == 201, made.text
    number = made.json()["number"]
    case = demo.client.get(f"/api/v1/cases/{number}", headers=clerk).json()
    assert {m["id"]: m["status"] for m in case["materials"]} == {
        "filing_form": "missing", "insured_id": "missing", "work_proof": "received"}
    pages = demo.client.get(f"/api/v1/cases/{number}/pages", headers=clerk).json()["items"]
    assert [p["material_id"] for p in pages] == ["work_proof"]
    assert demo.client.get(f"/api/v1/guide/prereviews/{code}").json()["case_number"] == number
    again = demo.client.post(f"/api/v1/guide/prereviews/{code}/case", headers=clerk, json={
        "applicant": {"name": "王五", "kind": "person"}})
    assert again.status_code == 409 and again.json()["errors"] == [{"field": "code", "reason": "预审已转为办件"}]


def test_prereview_pages_upload_comment_and_become_a_case(demo: Demo) -> None:
    """The applicant's upload page (no login), the clerk's page commenting per material, and the
    pre-review taken in as a case whose page lists the passed draft as received."""
    import base64

    png = base64.b64decode(_png())
    public = TestClient(demo.client.app, base_url="http://testserver")
    asks = public.get("/guide/YDJYBA/prereview")
    assert asks.status_code == 200 and 'id="situation-form"' in asks.text and 'type="file"' not in asks.text
    form = public.get("/guide/YDJYBA/prereview", params={"s_filing_kind": "worker", "s_agent": "self"})
    assert form.text.count('type="file"') == 3 and "异地工作证明" in form.text
    data = {"phone": "13800138000", "situation": ["filing_kind:worker", "agent:self"]}
    files = [("f_filing_form", ("备案表.png", png, "image/png")), ("f_work_proof", ("工作证明.png", png, "image/png"))]
    bad = public.post("/guide/YDJYBA/prereview", data={**data, "phone": "12"}, files=files)
    assert bad.status_code == 422 and "电话号码" in bad.text
    sent = public.post("/guide/YDJYBA/prereview", data=data, files=files)
    assert [r.status_code for r in sent.history] == [303] and sent.status_code == 200, sent.text
    code = sent.url.path.rsplit("/", 1)[1]
    assert "待预审" in sent.text and "已上传, 等待预审" in sent.text and "未上传" in sent.text

    clerk = TestClient(demo.client.app, base_url="http://testserver")
    assert page_login(clerk, demo.tokens["陈静"]).status_code == 303
    listed = clerk.get("/ui/prereviews")
    assert f'href="/ui/prereviews/{code}"' in listed.text and "异地就医" in listed.text
    page = clerk.get(f"/ui/prereviews/{code}")
    assert "13800138000" in page.text and page.text.count('class="inline review-form"') == 2
    assert clerk.get(f"/ui/prereviews/{code}/drafts/work_proof").content == png
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    headers = {"Origin": origin_of(clerk)}
    no_reason = clerk.post(f"/ui/prereviews/{code}/materials/filing_form", headers=headers,
                           data={"csrf": csrf, "verdict": "redo"})
    assert no_reason.status_code == 422 and "修改意见" in no_reason.text
    clerk.post(f"/ui/prereviews/{code}/materials/filing_form", headers=headers,
               data={"csrf": csrf, "verdict": "redo", "comment": "备案表未签名"})
    clerk.post(f"/ui/prereviews/{code}/materials/work_proof", headers=headers, data={"csrf": csrf, "verdict": "ok"})
    seen = public.get(f"/guide/prereviews/{code}").text
    assert "需修改</strong>: 备案表未签名" in seen and "已预审" in seen
    made = clerk.post(f"/ui/prereviews/{code}/case", headers=headers, data={
        "csrf": csrf, "name": "王五", "kind": "person", "id_number": "11010519491231002X", "form_token": "t" * 24})
    assert made.status_code == 200 and "收件成功" in made.text, made.text
    number = made.text.split('id="number">')[1].split("<")[0]
    case = clerk.get(f"/ui/cases/{number}").text
    assert "异地工作证明" in case
    after = clerk.get(f"/ui/prereviews/{code}").text
    assert f'href="/ui/cases/{number}"' in after and 'id="make-case"' not in after
    assert f"已转为办件 <strong id=\"case-number\">{number}" in public.get(f"/guide/prereviews/{code}").text


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 210, 220)).save(buf, "JPEG")
    return buf.getvalue()


def test_the_booth_takes_a_case_in_for_its_supervising_counter_and_prints_the_receipt(
        demo: Demo) -> None:
    """自助服务终端: the booth's sign-in opens /kiosk (camera allowed there only); a submission with
    a capture per material becomes a case at the supervising counter, its captures the scans, its
    收件凭证 drawn at once; the result page is the booth's own and shows the query code."""
    import sqlalchemy as sa

    from engine.advance import load_case
    from storage.tables import T_OUT

    staffed = TestClient(demo.client.app, base_url="http://testserver")
    page_login(staffed, demo.tokens["陈静"])
    assert staffed.get("/kiosk").status_code == 403  # a staffed counter's clerk is no booth
    booth = TestClient(demo.client.app, base_url="http://testserver", headers={"Origin": "http://testserver"})
    signed_in = page_login(booth, demo.tokens["自助终端01"], next_path="/kiosk")
    assert signed_in.headers["location"] == "/kiosk"  # the terminal's start-up lands on the booth page
    home = booth.get("/kiosk")
    assert home.status_code == 200 and "camera=(self)" in home.headers["permissions-policy"]
    assert 'data-code="YDJYBA"' in home.text and 'data-code="YJSKBCYD"' not in home.text  # the booth's items
    _one_head(home.text, "政务直办间 · 自助服务终端")
    assert "data-card-reader" not in home.text  # no reader service for this booth: on-screen entry
    csrf = home.text.split('data-csrf="')[1].split('"')[0]
    jpeg = _jpeg()
    base = {"csrf": csrf, "item": "YDJYBA", "name": "王五", "id_number": "11010519491231002X",
            "phone": "13800138000", "situation": ["filing_kind:worker", "agent:self"]}

    def shots(*mids: str) -> tuple[dict[str, object], list[tuple[str, tuple[str, bytes, str]]]]:
        return ({**base, "material": list(mids), "form_token": secrets.token_urlsafe(18)},
                [("captures", (f"{m}.jpg", jpeg, "image/jpeg")) for m in mids])

    data, files = shots("filing_form", "insured_id")
    missing = booth.post("/kiosk/cases", data=data, files=files)
    assert missing.status_code == 422 and missing.headers["content-type"] == "application/problem+json"
    body = missing.json()  # RFC 9457, as every refusal of the API
    assert body["status"] == 422 and body["title"] and "请拍摄「异地工作证明或个人承诺书」" in body["detail"]
    assert body["errors"] == [{"field": "captures.work_proof", "reason": "请拍摄「异地工作证明或个人承诺书」"}]
    data, files = shots("filing_form", "insured_id", "work_proof", "work_proof")
    elsewhere = booth.post("/kiosk/cases", data={**data, "item": "YJSKBCYD"}, files=files)
    assert elsewhere.status_code == 422 and elsewhere.json()["errors"][0]["field"] == "item_code"
    stale = booth.post("/kiosk/cases", data={**data, "csrf": "x" * 64}, files=files)
    assert stale.status_code == 400 and stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["errors"][0]["field"] == "csrf"
    bad_id = booth.post("/kiosk/cases", data={**data, "id_number": "123"}, files=files)
    assert bad_id.status_code == 422 and bad_id.json()["errors"][0]["field"] == "id_number"
    done = booth.post("/kiosk/cases", data=data, files=files)
    assert [r.status_code for r in done.history] == [303] and done.status_code == 200, done.text
    number = done.text.split('id="number">')[1].split("<")[0]
    code = done.text.split('id="query-code">')[1].split("<")[0]
    assert "异地工作证明或个人承诺书 <span class=\"muted\">2 页" in done.text and len(code) == 10
    assert done.headers["cache-control"] == "no-store"
    case = demo.client.get(f"/api/v1/cases/{number}", headers=demo.h("陈静")).json()
    assert {m["id"]: m["status"] for m in case["materials"]} == {
        "filing_form": "received", "insured_id": "received", "work_proof": "received"}
    history = demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h("陈静")).json()["items"]
    assert history[0]["actor_name"] == "自助终端 浦东新区企业服务中心政务直办间 1 号自助终端"
    assert history[0]["data"]["situation"] == {"filing_kind": "worker", "agent": "self"}
    progress = demo.client.get(f"/api/v1/progress/{number}", params={"code": code})
    assert progress.status_code == 200, progress.text
    # The 收件凭证 is queued for drawing at once (with the captures); until drawn the booth waits.
    # (Drawing and sealing it is the documents' tests' part: seconds of signing here.)
    waiting = booth.get(done.url.path.replace("/done/", "/receipt/"))
    assert waiting.status_code == 202 and waiting.headers["refresh"] == "2" and "正在制作收件凭证" in waiting.text
    _one_head(waiting.text, "正在制作收件凭证 · 自助服务终端")
    _one_head(done.text, "提交成功 · 自助服务终端")
    with session_scope(demo.engine, readonly=True) as s:
        row = load_case(s, number)
        jobs = s.execute(sa.select(T_OUT.c.job, T_OUT.c.payload).where(
            T_OUT.c.case_id == row["id"], T_OUT.c.status == "pending")).all()
    assert row["intake_counter_id"] == "pd-zhengwu" and row["companion_id"] is None
    assert any(job == "render_document" for job, _ in jobs), jobs
    run_jobs(demo.engine)  # the flows' work: the 收件凭证 drawn and sealed
    receipt = booth.get(done.url.path.replace("/done/", "/receipt/"))
    assert receipt.status_code == 200 and receipt.headers["content-type"] == "application/pdf"
    assert receipt.content.startswith(b"%PDF-") and receipt.headers["cache-control"] == "no-store"
    assert receipt.headers["x-frame-options"] == "SAMEORIGIN"  # the booth's viewer frames it, nobody else
    assert "frame-ancestors 'self'" in receipt.headers["content-security-policy"]
    viewer = booth.get(done.url.path.replace("/done/", "/receipt/") + "/view")
    assert viewer.status_code == 200 and 'id="receipt-frame"' in viewer.text and 'id="home"' in viewer.text
    assert "frame-ancestors 'none'" in viewer.headers["content-security-policy"]
    _one_head(viewer.text, "盖章的电子凭证 · 自助服务终端")
    shown = booth.get(done.url.path)
    assert 'id="receipt-number"' in shown.text  # the receipt's 文号 once drawn
    demo.fire("陈静", number, "approve")  # the supervising counter decides what the booth took in (即办)
    again = booth.post("/kiosk/cases", data=data, files=files)  # the same form again: its first result
    assert again.url.path == done.url.path




def _one_head(html: str, title: str) -> None:
    """A booth page with the booths' one head (_kiosk_head.html): its title, styles and script once."""
    assert html.startswith('<!doctype html>\n<html lang="zh-CN">\n<head>'), html[:80]
    assert f"<title>{title}</title>" in html and html.count("<head>") == 1
    assert html.count('href="/static/kiosk.css"') == 1 and html.count('src="/static/kiosk.js"') == 1


def test_a_booths_card_reader_service_is_its_own_loopback_origin_and_the_pages_only_other(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """settings.kiosk_card_readers: a booth's reader service is on the booth itself (loopback, a
    port, no credentials or query); the booth page names it and may connect there and nowhere
    else; another booth's reader is not this one's."""
    from pydantic import ValidationError

    from core.settings import Settings, get_settings

    ok = Settings(kiosk_card_readers={"pd-zizhu-01": "http://127.0.0.1:19561/card", "b2": "http://localhost:5/r"})
    assert ok.kiosk_card_readers["pd-zizhu-01"] == "http://127.0.0.1:19561/card"
    for bad in ("http://10.0.0.5:19561/card", "http://127.0.0.1/card", "ftp://127.0.0.1:21/card",
                "http://u:p@127.0.0.1:1/card", "http://127.0.0.1:1/card?x=1", "http://reader.example:1/card"):
        with pytest.raises(ValidationError, match="读卡服务须是本机地址"):
            Settings(kiosk_card_readers={"pd-zizhu-01": bad})
    booth = TestClient(demo.client.app, base_url="http://testserver")
    page_login(booth, demo.tokens["自助终端01"], next_path="/kiosk")
    monkeypatch.setattr(get_settings(), "kiosk_card_readers", {"pd-other": "http://127.0.0.1:7000/card"})
    assert "connect-src 'self';" in booth.get("/kiosk").headers["content-security-policy"]
    monkeypatch.setattr(get_settings(), "kiosk_card_readers", {"pd-zizhu-01": "http://[::1]:19561/card"})
    home = booth.get("/kiosk")
    assert 'data-card-reader="http://[::1]:19561/card"' in home.text
    assert "connect-src 'self' http://[::1]:19561;" in home.headers["content-security-policy"]
    assert "请将居民身份证放在读卡区" in home.text
