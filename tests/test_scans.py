"""Scans on cases and evidence, over the HTTP API, on SQLite and PostgreSQL, with the local
folder store and with the MinIO SDK against a real moto server."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import ALL_FGS, Demo, free_port
from fastapi import Request
from moto.server import ThreadedMotoServer
from PIL import Image, ImageDraw

from api import deps
from api.routes import documents
from core.settings import ROOT
from engine import scans, thumbnails
from engine.actors import SYSTEM
from storage.db import session_scope
from storage.object_local import LocalStore
from storage.object_s3 import S3Store
from storage.objects import ObjectInfo, ObjectLocked, ObjectStore
from storage.sweep import sweep

MISSING_LICENSE = {**ALL_FGS, "license": "missing"}
MAX_UPLOAD = 50 * 1024 * 1024  # the default limit


def jpeg(text: str = "营业执照 副本", size: tuple[int, int] = (640, 900)) -> bytes:
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    for y in range(40, size[1] - 40, 30):
        d.line([(40, y), (size[0] - 40, y)], fill=(30, 30, 30), width=2)
    d.text((50, 10), text.encode("ascii", "replace").decode(), fill="black")
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def png(color: str = "navy") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 400), color).save(out, "PNG")
    return out.getvalue()


def pdf() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 280), "white").save(out, "PDF")
    return out.getvalue()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    return S3Store(request.getfixturevalue("moto_endpoint"), "test", "test")


class Docs:
    """The demo API with a given object store, and helpers for pages."""

    def __init__(self, demo: Demo, store: ObjectStore) -> None:
        self.demo, self.store, self.client = demo, store, demo.client
        overrides = demo.client.app.dependency_overrides  # type: ignore[attr-defined]
        overrides[documents.get_object_store] = lambda: store

        def session(request: Request) -> Iterator[Any]:  # as in production: GETs read-only
            with session_scope(demo.engine, readonly=request.method in ("GET", "HEAD")) as s:
                yield s

        overrides[deps.get_session] = session

    def url(self, number: str, material: str = "license") -> str:
        return f"/api/v1/cases/{number}/materials/{material}/pages"

    def upload(self, who: str, number: str, data: bytes, name: str = "scan.jpg",
               material: str = "license", raw: str | None = None) -> Any:
        if raw is not None:
            return self.client.post(self.url(number, material), content=data,
                                    headers=self.demo.h(who, **{"Content-Type": raw, "X-File-Name": name}))
        return self.client.post(self.url(number, material), files={"file": (name, data, "image/jpeg")},
                                headers=self.demo.h(who))

    def case(self, who: str, number: str) -> dict[str, Any]:
        return dict(self.client.get(f"/api/v1/cases/{number}", headers=self.demo.h(who)).json())

    def material(self, who: str, number: str, material: str = "license") -> str:
        return next(m["status"] for m in self.case(who, number)["materials"] if m["id"] == material)

    def objects(self) -> set[tuple[str, str]]:
        return {(b, o.key) for b in self.store.buckets() for o in self.store.list(b)}

    def events(self, who: str, number: str, kind: str) -> list[dict[str, Any]]:
        r = self.client.get(f"/api/v1/cases/{number}/history", headers=self.demo.h(who))
        return [e for e in r.json()["items"] if e["kind"] == kind]


@pytest.fixture
def docs(demo: Demo, store: ObjectStore) -> Iterator[Docs]:
    yield Docs(demo, store)
    thumbnails.worker.wait_idle()  # nothing may outlive the test's database


def test_upload_updates_checklist_and_opens_the_guarded_trigger(docs: Docs) -> None:
    demo = docs.demo
    case = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")
    n = case["number"]
    forward = next(t for t in case["triggers"] if t["trigger"] == "forward")
    assert not forward["open"] and "分公司营业执照正副本" in forward["reasons"][0]
    demo.fire("王芳", n, "forward", case["version"], expect=409)

    r = docs.upload("王芳", n, jpeg(), "营业执照.jpg")  # multipart form
    assert r.status_code == 201, r.text
    page = r.json()
    assert page["page_no"] == 1 and page["media_type"] == "image/jpeg" and page["width"] == 640
    assert page["uploaded_by_name"] == "王芳" and page["counter_id"] == "jn-kuayu"
    assert page["original_name"] == "营业执照.jpg" and len(page["sha256"]) == 64
    assert r.headers["ETag"] == f'"{case["version"] + 1}"'
    assert r.headers["Location"].endswith(f"/pages/{page['id']}")

    r = docs.upload("王芳", n, png(), "%E8%83%8C%E9%9D%A2.png", raw="image/png")  # raw body
    assert r.status_code == 201, r.text
    assert r.json()["page_no"] == 2 and r.json()["original_name"] == "背面.png"

    view = docs.case("王芳", n)
    assert docs.material("王芳", n) == "received"
    assert next(t for t in view["triggers"] if t["trigger"] == "forward")["open"]
    out = demo.fire("王芳", n, "forward", view["version"])
    assert out["state"]["id"] == "handling" and out["holders"] == ["qd-xihai"]
    added = docs.events("王芳", n, "page_added")
    assert [e["data"]["page_no"] for e in added] == [1, 2]
    assert added[0]["data"]["sha256"] == page["sha256"] and added[0]["actor_name"] == "王芳"
    assert demo.count("case_pages") == 2 and len(docs.objects()) >= 2


BAD = [
    # (what, bytes, name, raw content type or None for multipart, status, code)
    ("wrong magic, .jpg name", b"PK\x03\x04 this is a zip, not a photo", "photo.jpg", None, 422, "type_mismatch"),
    ("unknown type", b"GIF89a not accepted", "anim", None, 422, "unknown_type"),
    ("truncated JPEG", None, "cut.jpg", None, 422, "corrupt_image"),
    ("empty body", b"", "empty.jpg", "image/jpeg", 422, "empty"),
    ("oversize", b"\xff\xd8\xff" + b"\0" * MAX_UPLOAD, "huge.jpg", "image/jpeg", 413, "too_large"),
    ("unparseable PDF", b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage", "form.pdf", None, 422, "corrupt_pdf"),
    ("path-like name", None, "../../etc/passwd.jpg", None, 422, "path_name"),
    ("windows path name", None, "C:\\scans\\a.jpg", "image/jpeg", 422, "path_name"),
]


def test_each_bad_upload_is_refused_with_its_own_reason_and_leaves_nothing(docs: Docs) -> None:
    demo = docs.demo
    case = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")
    n = case["number"]
    good = jpeg()
    before = docs.objects()
    reasons = set()
    for what, data, name, raw, status, code in BAD:
        body = good[: len(good) * 2 // 3] if what == "truncated JPEG" else good if data is None else data
        r = docs.upload("王芳", n, body, name, raw=raw)
        assert r.status_code == status, (what, r.text)
        problem = r.json()
        assert r.headers["content-type"] == "application/problem+json"
        assert problem["code"] == code, what
        [err] = problem["errors"]
        assert err["field"] == ("body" if raw else "file") and err["code"] == code and err["reason"]
        reasons.add(err["reason"])
        assert demo.count("case_pages") == 0 and docs.objects() == before, what
        assert docs.case("王芳", n)["version"] == case["version"], what
    assert len(reasons) == len(BAD) - 1  # both path-like names share one reason
    assert docs.material("王芳", n) == "missing" and docs.events("王芳", n, "page_added") == []


def test_uploads_are_exempt_from_the_global_body_limit_but_json_is_not(docs: Docs) -> None:
    demo = docs.demo
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    big = Image.effect_noise((1100, 1100), 60).convert("RGB")
    out = io.BytesIO()
    big.save(out, "PNG")
    assert len(out.getvalue()) > 1_000_000  # above max_body_bytes
    assert docs.upload("王芳", n, out.getvalue(), "big.png", raw="image/png").status_code == 201
    r = demo.client.post("/api/v1/cases", content=b"{" + b" " * 1_100_000 + b"}",
                         headers=demo.h("王芳", **{"Content-Type": "application/json"}))
    assert r.status_code == 413


def test_unrelated_counter_gets_403_and_participants_download_with_a_record(docs: Docs) -> None:
    demo = docs.demo
    case = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")
    n = case["number"]
    data = jpeg("license")
    page = docs.upload("王芳", n, data).json()
    content = f"{docs.url(n)}/{page['id']}/content"
    # 黄丽 works at the Nansha counter, which takes no part in this case.
    assert demo.client.get(docs.url(n), headers=demo.h("黄丽")).status_code == 403
    assert demo.client.get(f"/api/v1/cases/{n}/pages", headers=demo.h("黄丽")).status_code == 403
    r = demo.client.get(content, headers=demo.h("黄丽"), follow_redirects=False)
    assert r.status_code == 403 and r.json()["missing"] == ["counter"]
    assert thumbnails.worker.wait_idle(30)  # its thumbnail lands in the store too
    objects = docs.objects()
    assert docs.upload("黄丽", n, png("red")).status_code == 403
    assert docs.objects() == objects and demo.count("case_pages") == 1
    # The competent counter before the hand-off does not hold the case, but takes part in it.
    assert docs.upload("李强", n, png("green")).status_code == 403
    demo.fire("王芳", n, "forward")
    for who in ("李强", "王芳", "赵督查"):  # holds / held / supervisor
        listed = demo.client.get(docs.url(n), headers=demo.h(who))
        assert listed.status_code == 200 and [p["id"] for p in listed.json()["items"]] == [page["id"]]
        assert _download(docs, who, content) == data
    downloads = docs.events("李强", n, "page_downloaded")
    assert [e["actor_name"] for e in downloads] == ["李强", "王芳", "赵督查"]
    assert all(e["data"]["sha256"] == page["sha256"] for e in downloads)


def _download(docs: Docs, who: str, url: str) -> bytes:
    r = docs.client.get(url, headers=docs.demo.h(who), follow_redirects=False)
    if isinstance(docs.store, LocalStore):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/jpeg" and r.headers["etag"].strip('"') in r.headers["etag"]
        return r.content
    assert r.status_code == 307, r.text  # S3: a short-lived presigned URL, fetched over HTTP
    assert r.headers["location"] == r.json()["url"] and r.json()["expires_in"] == 300
    with urllib.request.urlopen(r.headers["location"], timeout=10) as got:
        return bytes(got.read())


def test_reorder_and_withdraw_pages(docs: Docs) -> None:
    demo = docs.demo
    case = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")
    n = case["number"]
    ids = [docs.upload("王芳", n, png(c), f"{c}.png").json()["id"] for c in ("red", "green", "blue")]
    version = docs.case("王芳", n)["version"]
    r = demo.client.put(f"{docs.url(n)}/order", json={"page_ids": [ids[2], ids[0], ids[1]]},
                        headers=demo.h("王芳", **{"If-Match": f'"{version}"'}))
    assert r.status_code == 200, r.text
    assert [(p["id"], p["page_no"]) for p in r.json()["items"]] == [(ids[2], 1), (ids[0], 2), (ids[1], 3)]
    stale = demo.client.put(f"{docs.url(n)}/order", json={"page_ids": ids},
                            headers=demo.h("王芳", **{"If-Match": f'"{version}"'}))
    assert stale.status_code == 412
    bad = demo.client.put(f"{docs.url(n)}/order", json={"page_ids": ids[:2]},
                          headers=demo.h("王芳", **{"If-Match": f'"{version + 1}"'}))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "page_ids"

    r = demo.client.delete(f"{docs.url(n)}/{ids[0]}", params={"comment": "拍糊了"}, headers=demo.h("王芳"))
    assert r.status_code == 200 and r.json()["withdrawn_at"]
    pages = demo.client.get(docs.url(n), headers=demo.h("王芳")).json()["items"]
    assert [(p["id"], p["page_no"]) for p in pages] == [(ids[2], 1), (ids[1], 2)]
    assert docs.material("王芳", n) == "received"
    for pid in (ids[1], ids[2]):
        assert demo.client.delete(f"{docs.url(n)}/{pid}", headers=demo.h("王芳")).status_code == 200
    assert docs.material("王芳", n) == "missing"  # the last page went
    assert demo.client.delete(f"{docs.url(n)}/{ids[1]}", headers=demo.h("王芳")).status_code == 409
    everything = demo.client.get(docs.url(n), params={"include_withdrawn": True}, headers=demo.h("王芳"))
    assert len(everything.json()["items"]) == 3
    withdrawn = docs.events("王芳", n, "page_withdrawn")
    assert [e["data"]["material_status"] for e in withdrawn] == [None, None, "missing"]
    assert withdrawn[0]["comment"] == "拍糊了"
    with session_scope(demo.engine) as s:  # the objects stay until swept
        for p in scans.list_pages(s, n, SYSTEM, include_withdrawn=True):
            assert docs.store.stat(p["bucket"], p["key"]) is not None


def test_same_page_twice_is_stored_once_and_thumbnails_come_off_the_request_path(docs: Docs) -> None:
    demo = docs.demo
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    data = jpeg(uuid.uuid4().hex, (1600, 2200))  # new bytes: the moto server outlives tests
    before = docs.objects()
    a = docs.upload("王芳", n, data).json()
    b = docs.upload("王芳", n, data, material="application").json()
    assert a["sha256"] == b["sha256"] and a["id"] != b["id"]
    assert a["thumbnail_url"] is None  # not made inside the request
    assert thumbnails.worker.wait_idle(30)
    new = docs.objects() - before  # one object for both pages, and one (shared) thumbnail
    assert len(new) == 2 and (scans.bucket("scans", "370100"), f"sha256/{a['sha256']}") in new
    pages = demo.client.get(docs.url(n), headers=demo.h("王芳")).json()["items"]
    r = demo.client.get(pages[0]["thumbnail_url"], headers=demo.h("王芳"), follow_redirects=False)
    if r.status_code == 307:
        with urllib.request.urlopen(r.headers["location"], timeout=10) as got:
            thumb = got.read()
    else:
        assert r.status_code == 200
        thumb = r.content
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "JPEG" and max(im.size) <= 320
    assert docs.events("王芳", n, "page_downloaded") == []  # previews are not downloads


def test_engine_add_page_without_http(docs: Docs) -> None:
    """What video calls to file a captured still: the system actor may add pages."""
    demo = docs.demo
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    with session_scope(demo.engine) as s:
        page = scans.add_page(s, n, "license", jpeg("still"), "still.jpg", SYSTEM, store=docs.store)
    assert page["page_no"] == 1 and page["uploaded_by_name"] == "系统"
    assert docs.material("王芳", n) == "received"
    assert docs.store.stat(page["bucket"], page["key"]) is not None


def test_sweep_finds_a_planted_orphan_and_leaves_referenced_and_young_objects(docs: Docs) -> None:
    demo = docs.demo
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    page = docs.upload("王芳", n, png("olive"), "p.png").json()
    gone = docs.upload("王芳", n, jpeg(uuid.uuid4().hex), "gone.jpg").json()
    assert demo.client.delete(f"{docs.url(n)}/{gone['id']}", headers=demo.h("王芳")).status_code == 200
    assert thumbnails.worker.wait_idle(30)
    bucket = scans.bucket("scans", "370100")
    orphan = docs.store.put(bucket, io.BytesIO(png("orange")), "image/png", max_bytes=1 << 20)
    time.sleep(1.1)  # S3 times have one-second resolution
    cutoff = datetime.now(UTC)
    time.sleep(1.1)
    young = docs.store.put(bucket, io.BytesIO(png("teal")), "image/png", max_bytes=1 << 20)
    grace = (datetime.now(UTC) - cutoff).total_seconds()
    with session_scope(demo.engine) as s:
        dry = sweep(s, docs.store, prefix="tongban", grace_seconds=int(grace) + 1)
        keys = {o.key for o in dry.orphans}
        assert orphan.key in keys and young.key not in keys and f"sha256/{page['sha256']}" not in keys
        assert f"sha256/{gone['sha256']}" in keys  # withdrawn before the cutoff
        assert docs.store.stat(bucket, orphan.key) is not None  # a dry run deletes nothing
        done = sweep(s, docs.store, prefix="tongban", grace_seconds=int(grace) + 1, delete=True)
    assert orphan.key in {o.key for o in done.deleted}
    assert docs.store.stat(bucket, orphan.key) is None
    assert docs.store.stat(bucket, young.key) is not None
    assert docs.store.stat(bucket, f"sha256/{page['sha256']}") is not None
    assert docs.store.stat(bucket, f"sha256/{gone['sha256']}") is None
    r = demo.client.get(f"{docs.url(n)}/{gone['id']}/content", headers=demo.h("王芳"), follow_redirects=False)
    assert r.status_code in (307, 410)  # S3 presigns blindly; the folder store says it is gone
    with session_scope(demo.engine) as s:  # and the thumbnail, referenced by its page
        [row] = scans.list_pages(s, n, SYSTEM)
    assert row["thumbnail_key"] and docs.store.stat(bucket, row["thumbnail_key"]) is not None


def test_sweep_command_line(sqlite_demo: Demo, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    docs = Docs(sqlite_demo, store)
    n = sqlite_demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    assert docs.upload("王芳", n, png("plum"), raw="image/png").status_code == 201
    orphan = store.put(scans.bucket("scans", "370100"), io.BytesIO(b"orphan"), "image/png", max_bytes=99)
    env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'tongban.db'}",
           "TONGBAN_OBJECT_STORE": "local", "TONGBAN_OBJECT_DIR": str(tmp_path / "objects")}

    def run(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "cli", "storage", "sweep", *args], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert orphan.key not in run()  # default grace: the orphan is young
    listed = run("--grace", "0")
    assert orphan.key in listed and "试运行" in listed and store.stat(orphan.bucket, orphan.key)
    assert "已删除" in run("--grace", "0", "--delete")
    assert store.stat(orphan.bucket, orphan.key) is None and store.stat(orphan.bucket, orphan.key) is None
    thumbnails.worker.wait_idle()


@pytest.fixture
def outage(moto_endpoint: str) -> Iterator[tuple[ThreadedMotoServer, int]]:
    """A second moto server of our own to stop and start (moto's data lives in the process)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield server, port
    server.stop()


def test_store_outage_gives_503_with_no_half_written_state_and_recovers(
        demo: Demo, outage: tuple[ThreadedMotoServer, int]) -> None:
    server, port = outage
    store = S3Store(f"127.0.0.1:{port}", "test", "test", connect_timeout=1)
    docs = Docs(demo, store)
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    first = docs.upload("王芳", n, jpeg("before"))
    assert first.status_code == 201
    assert thumbnails.worker.wait_idle(30)
    version = docs.case("王芳", n)["version"]
    server.stop()

    r = docs.upload("王芳", n, jpeg("during"))
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0, r.text
    assert r.headers["content-type"] == "application/problem+json"
    cut = jpeg("during, cut")
    r = docs.upload("王芳", n, cut[: len(cut) // 2])  # a bad file is refused for what it is
    assert r.status_code == 422 and r.json()["code"] == "corrupt_image", r.text
    r = demo.client.get(f"{docs.url(n)}/{first.json()['id']}/thumbnail", headers=demo.h("王芳"),
                        follow_redirects=False)
    assert r.status_code in (200, 307), r.text  # presigning needs no server
    with session_scope(demo.engine) as s:
        r2 = None
        try:
            scans.store_evidence(s, n, "certificate", pdf(), "application/pdf", SYSTEM, store=store)
        except Exception as exc:  # noqa: BLE001
            r2 = exc
    assert r2 is not None and getattr(r2, "status", None) == 503
    view = docs.case("王芳", n)
    assert view["version"] == version and demo.count("case_pages") == 1 and demo.count("evidence") == 0
    assert len(docs.events("王芳", n, "page_added")) == 1

    server.start()
    deadline = time.monotonic() + 10
    while True:
        r = docs.upload("王芳", n, jpeg("after"))
        if r.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 201, r.text
    assert r.json()["page_no"] == 2 and docs.case("王芳", n)["version"] == version + 1
    thumbnails.worker.wait_idle()


def test_evidence_is_retained_listed_and_downloads_are_recorded(docs: Docs) -> None:
    demo = docs.demo
    case = demo.create("王芳", "FGSFZRBG", {**ALL_FGS}, competent_region="370211")
    n = case["number"]
    cert = pdf()
    with session_scope(demo.engine) as s:
        info = scans.store_evidence(s, n, "certificate", cert, "application/pdf", SYSTEM,
                                    store=docs.store, meta={"certificate_no": "C-1"})
        again = scans.store_evidence(s, case["number"], "certificate", io.BytesIO(cert),
                                     "application/pdf", SYSTEM, store=docs.store)
    assert isinstance(info, ObjectInfo) and info.bucket == scans.bucket("evidence", "370211")
    assert again.key == info.key and again.version_id == info.version_id
    assert info.retain_until is not None and (info.retain_until - datetime.now(UTC)).days >= 3649
    with pytest.raises(ObjectLocked):
        docs.store.delete(info.bucket, info.key)
    listed = demo.client.get(f"/api/v1/cases/{n}/evidence", headers=demo.h("王芳"))
    assert listed.status_code == 200
    [first, _] = listed.json()["items"]
    assert first["kind"] == "certificate" and first["sha256"] == info.sha256
    assert first["meta"] == {"certificate_no": "C-1"}
    assert demo.client.get(f"/api/v1/cases/{n}/evidence", headers=demo.h("黄丽")).status_code == 403
    url = first["content_url"]
    assert demo.client.get(url, headers=demo.h("黄丽"), follow_redirects=False).status_code == 403
    r = demo.client.get(url, headers=demo.h("王芳"), follow_redirects=False)
    if r.status_code == 307:
        with urllib.request.urlopen(r.headers["location"], timeout=10) as got:
            assert got.read() == cert
    else:
        assert r.status_code == 200 and r.content == cert
        assert r.headers["content-type"] == "application/pdf"
    stored = docs.events("王芳", n, "evidence_stored")
    assert [e["data"]["kind"] for e in stored] == ["certificate", "certificate"]
    [dl] = docs.events("王芳", n, "evidence_downloaded")
    assert dl["actor_name"] == "王芳" and dl["data"]["evidence_id"] == first["id"]


def test_pdf_pages_are_accepted_and_get_no_thumbnail(docs: Docs) -> None:
    demo = docs.demo
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    r = docs.upload("王芳", n, pdf(), "申请书.jpg", material="application")  # type from the bytes
    assert r.status_code == 201, r.text
    assert r.json()["media_type"] == "application/pdf" and r.json()["pages"] == 1
    assert thumbnails.worker.wait_idle(30)
    [page] = demo.client.get(docs.url(n, "application"), headers=demo.h("王芳")).json()["items"]
    assert page["thumbnail_url"] is None


def test_parallel_downloads_of_one_case_all_succeed_and_are_all_recorded(docs: Docs) -> None:
    """A reviewer opening several pages at once: the history appends queue on the case row."""
    demo = docs.demo
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    page = docs.upload("王芳", n, jpeg("parallel")).json()
    actor = demo.actor("王芳")
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            with session_scope(demo.engine, readonly=True) as s:
                scans.page_download(s, n, "license", page["id"], actor, store=docs.store)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(docs.events("王芳", n, "page_downloaded")) == 6


def test_missing_thumbnails_are_made_again_by_backfill(docs: Docs) -> None:
    """A thumbnail lost to an outage or a restart (the page row without one) is made again."""
    demo = docs.demo
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    page = docs.upload("王芳", n, png("maroon")).json()
    assert thumbnails.worker.wait_idle(30)
    with demo.engine.begin() as conn:  # as if the worker never ran
        conn.exec_driver_sql("UPDATE case_pages SET thumbnail_key = NULL")
    assert thumbnails.backfill(demo.engine, docs.store) == 1
    [row] = demo.client.get(docs.url(n), headers=demo.h("王芳")).json()["items"]
    assert row["id"] == page["id"] and row["thumbnail_url"]


class Recording:
    """The real store, with the calls an upload makes to it written down (every call goes through)."""

    def __init__(self, store: ObjectStore) -> None:
        self.inner, self.calls = store, []  # type: list[tuple[str, str]]

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        self.calls.append(("stat", key))
        return self.inner.stat(bucket, key)

    def put(self, bucket: str, stream: Any, content_type: str, **kw: Any) -> ObjectInfo:
        info = self.inner.put(bucket, stream, content_type, **kw)
        self.calls.append(("put", info.key))
        return info

    def create(self, bucket: str, data: bytes, content_type: str, *, sha256: str) -> ObjectInfo | None:
        info = self.inner.create(bucket, data, content_type, sha256=sha256)
        self.calls.append(("create" if info else "exists", f"sha256/{sha256}"))
        return info

    def delete(self, bucket: str, key: str) -> None:
        self.calls.append(("delete", key))
        self.inner.delete(bucket, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_new_image_is_written_while_it_is_checked_and_removed_again_when_it_fails(
        demo: Demo, store: ObjectStore) -> None:
    """Images decode while their object is written; a failed one takes back only what it wrote."""
    rec = Recording(store)
    docs = Docs(demo, rec)  # type: ignore[arg-type]
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    b = scans.bucket("scans", "370100")
    good = jpeg(uuid.uuid4().hex)  # new bytes: the moto server outlives tests
    bad = good[: len(good) * 2 // 3]
    key = f"sha256/{hashlib.sha256(bad).hexdigest()}"
    version = docs.case("王芳", n)["version"]

    r = docs.upload("王芳", n, bad, "cut.jpg")  # new bytes: written during the check, then deleted
    assert r.status_code == 422 and r.json()["code"] == "corrupt_image", r.text
    assert [c for c in rec.calls if c[1] == key] == [("create", key), ("delete", key)]
    assert store.stat(b, key) is None and demo.count("case_pages") == 0

    rec.calls.clear()  # the same bytes already stored by someone else: neither rewritten nor deleted
    planted = store.put(b, io.BytesIO(bad), "image/jpeg", max_bytes=MAX_UPLOAD)
    r = docs.upload("王芳", n, bad, "cut.jpg", raw="image/jpeg")
    assert r.status_code == 422 and r.json()["code"] == "corrupt_image", r.text
    assert rec.calls == [("exists", key)]
    assert (still := store.stat(b, key)) is not None and still.size == planted.size
    assert docs.case("王芳", n)["version"] == version and demo.count("case_pages") == 0

    rec.calls.clear()
    gkey = f"sha256/{hashlib.sha256(good).hexdigest()}"
    assert docs.upload("王芳", n, good).status_code == 201
    assert [c for c in rec.calls if c[1] == gkey] == [("create", gkey)]
    rec.calls.clear()  # again: stored once, written again (young for the sweep) after the check
    assert docs.upload("王芳", n, good, material="application").status_code == 201
    assert [c for c in rec.calls if c[1] == gkey] == [("exists", gkey), ("put", gkey)]
    assert docs.case("王芳", n)["version"] == version + 2
    thumbnails.worker.wait_idle()


def test_content_digest_is_checked_against_the_bytes_that_arrived(docs: Docs) -> None:
    demo = docs.demo
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    data = jpeg(uuid.uuid4().hex)

    def post(digest: str) -> Any:
        return demo.client.post(docs.url(n), content=data, headers=demo.h(
            "王芳", **{"Content-Type": "image/jpeg", "Content-Digest": digest}))

    def b64(raw: bytes) -> str:
        return base64.b64encode(hashlib.sha256(raw).digest()).decode()

    before, version = docs.objects(), docs.case("王芳", n)["version"]
    r = post(f"sha-256=:{b64(data + b'x')}:")  # altered or cut on the way
    assert r.status_code == 422 and r.json()["code"] == "digest_mismatch", r.text
    assert r.json()["errors"][0]["field"] == "Content-Digest"
    r = post("sha-256=:bm90IGEgZGlnZXN0:")
    assert r.status_code == 422 and r.json()["code"] == "bad_digest", r.text
    assert docs.objects() == before and demo.count("case_pages") == 0
    assert docs.case("王芳", n)["version"] == version
    r = post(f"sha-512=:{base64.b64encode(b'0' * 64).decode()}:, sha-256=:{b64(data)}:")
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_case_and_material_are_refused_before_the_body_is_judged(docs: Docs) -> None:
    """A wrong case, material or counter is answered without accepting the bytes."""
    demo = docs.demo
    n = demo.create("王芳", "FGSFZRBG", MISSING_LICENSE, competent_region="370211")["number"]
    junk = b"GIF89a not even a type we accept"
    assert docs.upload("王芳", n, junk, material="no_such_slot").status_code == 404
    assert docs.upload("王芳", "370100000000000000", junk).status_code == 404
    assert docs.upload("黄丽", n, junk).status_code == 403  # a counter that never held the case
    assert docs.upload("王芳", n, junk).status_code == 422
