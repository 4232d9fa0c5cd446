"""要件预审 after the first upload, on SQLite and PostgreSQL (the `demo` fixture): the applicant
re-uploads a draft the clerk marked 需修改 (a new version back to 待预审, the earlier one and the
comment with its time kept), refusals that change nothing, the phone and the 情形 carried into the
case with the history naming the 预审码, and the retention purge on the hourly sweep (Beijing
days, frozen clock): drafts' objects deleted, expired rows anonymised, converted rows kept."""

from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import Demo

from core import clock
from core.settings import get_settings

ANSWERS = {"filing_kind": "worker", "agent": "self"}
APPLICANT = {"name": "王五", "kind": "person", "id_number": "11010519491231002X"}


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Asia/Shanghai"))


# Drafts, captures and drawn documents go to this test's own folder.
pytestmark = pytest.mark.usefixtures("objects")


def _png(shade: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (shade, shade, shade)).save(buf, "PNG")
    return buf.getvalue()


def _draft(name: str, data: bytes) -> dict[str, str]:
    return {"file_name": name, "content_base64": base64.b64encode(data).decode()}


def _submit(demo: Demo, **drafts: bytes) -> str:
    r = demo.client.post("/api/v1/guide/prereviews", json={
        "item_code": "YDJYBA", "phone": "138 0013 8000", "situation": ANSWERS,
        "drafts": {mid: _draft(f"{mid}.png", data) for mid, data in drafts.items()}})
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


def _review(demo: Demo, code: str, mid: str, verdict: str, comment: str | None = None) -> dict[str, Any]:
    r = demo.client.post(f"/api/v1/guide/prereviews/{code}/materials/{mid}", headers=demo.h("陈静"),
                         json={"verdict": verdict, "comment": comment})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _draft_rows(demo: Demo, code: str) -> list[tuple[Any, ...]]:
    with demo.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "select d.material_id, d.version, d.verdict, d.key from prereview_drafts d"
            " join prereviews p on p.id = d.prereview_id where p.code = :c order by d.material_id, d.version"),
            {"c": code})]


def _objects_in(bucket: str) -> int:
    from storage.object_factory import get_store

    store = get_store()
    return sum(1 for _ in store.list(bucket)) if bucket in store.buckets() else 0


def test_a_redo_draft_uploaded_again_is_a_new_version_the_clerk_sees_with_the_old_one_kept(demo: Demo) -> None:
    from engine.guide_prereview import MAX_DRAFT_BYTES, drafts_bucket

    first, second = _png(200), _png(120)
    code = _submit(demo, filing_form=first, work_proof=first)
    _review(demo, code, "work_proof", "ok")
    with clock.frozen(beijing("2026-12-07 09:30")):
        _review(demo, code, "filing_form", "redo", "备案表未签名")
    seen = demo.client.get(f"/api/v1/guide/prereviews/{code}").json()
    assert seen["status"] == "reviewed"
    before = _draft_rows(demo, code)

    # Refusals: each a problem with its field, nothing written (rows, status, objects).
    objects = _objects_in(drafts_bucket())
    url = f"/api/v1/guide/prereviews/{code}/drafts"
    refusals = {
        "wrong code": (demo.client.post("/api/v1/guide/prereviews/NOSUCHCODE00/drafts",
                                        json={"drafts": {"filing_form": _draft("a.png", second)}}), 404, None),
        "accepted": (demo.client.post(url, json={"drafts": {"filing_form": _draft("a.png", second),
                                                            "work_proof": _draft("b.png", second)}}),
                     409, "drafts.work_proof"),
        "not of the item": (demo.client.post(url, json={"drafts": {"filing_form": _draft("a.png", second),
                                                                   "nonsense": _draft("b.png", second)}}),
                            422, "drafts.nonsense"),
        "not of the 情形": (demo.client.post(url, json={"drafts": {"referral": _draft("b.png", second)}}),
                           422, "drafts.referral"),
        "not a scan": (demo.client.post(url, json={"drafts": {"filing_form": _draft("a.png", b"hello world")}}),
                       422, "drafts.filing_form"),
        "oversized": (demo.client.post(url, json={"drafts": {"filing_form": _draft(
            "a.png", second + b"\0" * (MAX_DRAFT_BYTES + 1 - len(second)))}}), 413, "drafts.filing_form"),
    }
    for why, (r, status, field) in refusals.items():
        assert r.status_code == status, (why, r.text)
        assert r.headers["content-type"] == "application/problem+json", why
        if field:
            assert r.json()["errors"][0]["field"] == field and r.json()["errors"][0]["reason"], why
    assert _draft_rows(demo, code) == before and _objects_in(drafts_bucket()) == objects
    assert demo.client.get(f"/api/v1/guide/prereviews/{code}").json()["status"] == "reviewed"

    with clock.frozen(beijing("2026-12-08 14:05")):
        again = demo.client.post(url, json={"drafts": {"filing_form": _draft("备案表-已签名.png", second),
                                                       "insured_id": _draft("社保卡.png", second)}})
    assert again.status_code == 200, again.text
    shown = {m["id"]: m for m in again.json()["materials"]}
    assert again.json()["status"] == "open"
    form = shown["filing_form"]
    assert (form["version"], form["verdict"], form["file_name"], form["can_upload"]) == (
        2, None, "备案表-已签名.png", False)
    assert [(e["version"], e["verdict_label"], e["comment"], e["reviewed_at"][:16]) for e in form["earlier"]] == [
        (1, "需修改", "备案表未签名", "2026-12-07T01:30")]  # the comment with its time (UTC here)
    assert shown["insured_id"]["version"] == 1 and shown["work_proof"]["verdict"] == "ok"
    # Waiting for the clerk: not again until reviewed.
    waiting = demo.client.post(url, json={"drafts": {"filing_form": _draft("c.png", first)}})
    assert waiting.status_code == 409 and waiting.json()["errors"][0]["field"] == "drafts.filing_form"

    # The clerk's page: the new version under review, the old one kept and downloadable.
    from conftest import page_login
    from fastapi.testclient import TestClient

    clerk = TestClient(demo.client.app, base_url="http://testserver")
    page_login(clerk, demo.tokens["陈静"])
    page = clerk.get(f"/ui/prereviews/{code}").text
    assert "第 2 版" in page and "备案表-已签名.png" in page and "2026-12-08 14:05 上传" in page
    assert "第 1 版" in page and "备案表未签名" in page and "2026-12-07 09:30" in page
    assert clerk.get(f"/ui/prereviews/{code}/drafts/filing_form").content == second
    assert clerk.get(f"/ui/prereviews/{code}/drafts/filing_form?version=1").content == first
    assert clerk.get(f"/ui/prereviews/{code}/drafts/filing_form?version=7").status_code == 404
    public = TestClient(demo.client.app, base_url="http://testserver")
    status = public.get(f"/guide/prereviews/{code}").text
    assert "已上传, 等待预审 (第 2 版)" in status and "备案表未签名" in status and "2026-12-07 09:30" in status

    # Passed at the second try: the case carries version 2, the phone and the 情形; its history
    # says it came from the pre-review.
    _review(demo, code, "filing_form", "ok")
    made = demo.client.post(f"/api/v1/guide/prereviews/{code}/case", headers=demo.h("陈静"),
                            json={"applicant": APPLICANT})
    assert made.status_code == 201, made.text
    number = made.json()["number"]
    case = demo.client.get(f"/api/v1/cases/{number}", headers=demo.h("陈静")).json()
    assert case["applicant"]["phone"] == "13800138000"  # as given at pre-review, spaces gone
    assert {m["id"]: m["status"] for m in case["materials"]} == {
        "filing_form": "received", "insured_id": "missing", "work_proof": "received"}
    page_of = {p["material_id"]: p["content_url"] for p in demo.client.get(
        f"/api/v1/cases/{number}/pages", headers=demo.h("陈静")).json()["items"]}
    scan = demo.client.get(page_of["filing_form"], headers=demo.h("陈静"))
    assert scan.status_code == 200 and scan.content == second
    history = demo.client.get(f"/api/v1/cases/{number}/history", headers=demo.h("陈静")).json()["items"]
    assert history[0]["data"]["prereview"] == code and history[0]["data"]["situation"] == ANSWERS
    assert f"来自预审 {code}" in clerk.get(f"/ui/cases/{number}").text
    after = demo.client.post(url, json={"drafts": {"insured_id": _draft("d.png", first)}})
    assert after.status_code == 409 and after.json()["errors"][0]["field"] == "code"


def test_the_phone_a_clerk_types_at_intake_wins_over_the_pre_reviews(demo: Demo) -> None:
    code = _submit(demo, work_proof=_png(90))
    made = demo.client.post(f"/api/v1/guide/prereviews/{code}/case", headers=demo.h("陈静"),
                            json={"applicant": {**APPLICANT, "phone": "021-12345678"}})
    case = demo.client.get(f"/api/v1/cases/{made.json()['number']}", headers=demo.h("陈静")).json()
    assert case["applicant"]["phone"] == "021-12345678"


def test_retention_purges_stale_pre_reviews_in_beijing_days_and_converted_drafts_on_the_sweep(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import prereview_purge
    from engine.guide_prereview import drafts_bucket
    from flows import drain

    monkeypatch.setattr(prereview_purge, "UPLOAD_WINDOW", timedelta(0))  # the objects here are seconds old
    monkeypatch.setattr(get_settings(), "anchor_key", "the sweep's test key")
    shared, own, kept = _png(10), _png(20), _png(30)
    with clock.frozen(beijing("2026-11-02 10:00")):
        stale = _submit(demo, filing_form=shared, work_proof=own)
        _review(demo, stale, "filing_form", "redo", "请签名")
        taken = _submit(demo, work_proof=shared)
        _review(demo, taken, "work_proof", "ok")
        number = demo.client.post(f"/api/v1/guide/prereviews/{taken}/case", headers=demo.h("陈静"),
                                  json={"applicant": APPLICANT}).json()["number"]
        monkeypatch.setattr(prereview_purge, "UPLOAD_WINDOW", timedelta(minutes=10))
        clock.advance(timedelta(minutes=5))  # just taken in: its drafts wait out the upload window
        assert prereview_purge.purge(demo.engine)["prereviews_drafts_dropped"] == 0
        monkeypatch.setattr(prereview_purge, "UPLOAD_WINDOW", timedelta(0))
    with clock.frozen(beijing("2026-11-20 08:00")):
        active = _submit(demo, filing_form=kept, work_proof=shared)  # the shared bytes again
    assert _objects_in(drafts_bucket()) == 3

    # 30 days: the one made on 11-02 lives through 12-02 (Beijing); at 00:01 on 12-03 Beijing
    # (still 12-02 in UTC) it has expired.
    with clock.frozen(beijing("2026-12-02 23:59")):
        first = prereview_purge.purge(demo.engine)
    assert first["prereviews_expired"] == 0 and first["prereviews_drafts_dropped"] == 1
    assert first["prereview_objects_deleted"] == 0  # the converted one's object serves `stale` too
    assert [k is None for *_, k in _draft_rows(demo, taken)] == [True]
    assert _draft_rows(demo, taken)[0][2] == "ok"  # the verdict stays in the record
    with clock.frozen(beijing("2026-12-03 00:01")):
        drain.use_engine(demo.engine)
        try:
            counts = drain.deadline_sweep.fn()  # the hourly sweep runs the purge
        finally:
            drain.use_engine(None)
    assert counts["prereviews_expired"] == 1 and counts["prereview_objects_deleted"] == 1, counts
    assert _draft_rows(demo, stale) == []
    assert _objects_in(drafts_bucket()) == 2  # `own` went; `shared` is `active`'s too, `kept` too
    with demo.engine.connect() as conn:
        row = conn.execute(sa.text("select status, phone, item_code, purged_at from prereviews where code = :c"),
                           {"c": stale}).one()
    assert row[0] == "expired" and row[1] is None and row[2] == "YDJYBA" and row[3] is not None
    gone = demo.client.get(f"/api/v1/guide/prereviews/{stale}").json()
    assert gone["status_label"] == "已过期" and not any(m["uploaded"] for m in gone["materials"])
    assert demo.client.post(f"/api/v1/guide/prereviews/{stale}/drafts", json={
        "drafts": {"filing_form": _draft("a.png", shared)}}).status_code == 409
    from storage.db import session_scope

    with session_scope(demo.engine, readonly=True) as s:
        assert prereview_purge.statistics(s)["YDJYBA"] == {"expired": 1, "converted": 1, "open": 1}
    # The case keeps its own copy; the active pre-review keeps its drafts.
    pages = demo.client.get(f"/api/v1/cases/{number}/pages", headers=demo.h("陈静")).json()["items"]
    assert demo.client.get(pages[0]["content_url"], headers=demo.h("陈静")).content == shared
    assert all(k is not None for *_, k in _draft_rows(demo, active))
    with clock.frozen(beijing("2026-12-21 00:01")):  # 11-20's lives through 12-20
        assert prereview_purge.purge(demo.engine)["prereviews_expired"] == 1
    assert _objects_in(drafts_bucket()) == 0
