"""Hostile input: file names with bidi overrides and zero-width characters.

One rule (engine.filenames, through engine.scan_validation.check_name) for every way a name comes
in: the API's multipart field and raw ``X-File-Name``, the case page's upload form, and files sent
in a video room. A name with a format or control character, or too long in characters or bytes,
is refused naming the field, and nothing is stored; a decomposed name is stored composed (NFC).
"""

from __future__ import annotations

import asyncio
import io
import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from aiortc import RTCPeerConnection
from conftest import ALL_FGS, ALL_GGCS, Demo, origin_of, page_login
from fastapi import Request
from PIL import Image

from api import deps
from api.pages import scans_ui, web
from api.routes import documents
from engine import thumbnails
from engine.filenames import MAX_BYTES, MAX_CHARS, BadFileName, clean_file_name
from storage.db import session_scope
from storage.object_local import LocalStore
from video import messages
from video.hub import Hub
from video.live import LiveRoom, Peer

RLO = "invoice\u202egpj.exe"  # shows as "invoiceexe.jpg"
ZERO_WIDTH = ["scan\u200b.jpg", "sc\u200can.jpg", "sc\u200dan.jpg", "\ufeffscan.jpg", "a\u2066b\u2069.jpg",
              "a\u00ad.jpg", "a\u061c.jpg"]
DECOMPOSED = "Cafe\u0301-营业执照.jpg"  # e + combining acute
COMPOSED = "Caf\u00e9-营业执照.jpg"

REFUSED = [
    (RLO, "invisible_character"),
    *[(n, "invisible_character") for n in ZERO_WIDTH],
    ("a\u2028b.jpg", "invisible_character"),  # line separator
    ("a\nb.jpg", "invisible_character"),
    ("a\x00.jpg", "invisible_character"),
    ("a\ud800.jpg", "invisible_character"),  # a lone surrogate (JSON can carry one)
    ("a" * (MAX_CHARS - 3) + ".jpg", "name_too_long"),  # one character too many
    ("营" * 86, "name_too_long"),  # 86 characters, 258 bytes of UTF-8
    ("../../etc/passwd.jpg", "path_name"),
    ("C:\\scans\\a.jpg", "path_name"),
]


@pytest.mark.parametrize(("name", "code"), REFUSED, ids=[ascii(n)[:40] for n, _ in REFUSED])
def test_the_rule_refuses_with_a_code_and_a_chinese_reason(name: str, code: str) -> None:
    with pytest.raises(BadFileName) as refused:
        clean_file_name(name)
    assert refused.value.code == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.value.reason)
    if code == "invisible_character":
        bad = next(ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl"))
        assert f"U+{ord(bad):04X}" in refused.value.reason


def test_the_rule_normalises_and_keeps_what_is_fine() -> None:
    assert clean_file_name(DECOMPOSED) == COMPOSED and clean_file_name(COMPOSED) == COMPOSED
    assert clean_file_name(None) is None and clean_file_name("") is None
    longest = "营" * (MAX_BYTES // 3)
    assert clean_file_name(longest) == longest and len(longest.encode()) == MAX_BYTES
    ascii_longest = "a" * (MAX_CHARS - 4) + ".jpg"
    assert clean_file_name(ascii_longest) == ascii_longest
    for fine in ("营业执照 副本 (1).jpg", "ｆｕｌｌ　ｗｉｄｔｈ.png", "\ue000生僻字.jpg", "報告-2026.pdf"):
        assert clean_file_name(fine) == fine  # private use (rare characters), fullwidth, spaces


# -- over HTTP, against a real server -----------------------------------------------------------

def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 160), "white").save(out, "JPEG")
    return out.getvalue()


class Site:
    def __init__(self, demo: Demo, url: str, store: LocalStore) -> None:
        self.demo, self.url, self.store = demo, url, store
        self.number = demo.create("王芳", "FGSFZRBG", {**ALL_FGS, "license": "missing"},
                                  competent_region="370211")["number"]
        self.pages = f"{url}/api/v1/cases/{self.number}/materials/license/pages"

    def multipart(self, name: str) -> httpx.Response:
        return httpx.post(self.pages, headers=self.demo.h("王芳"), files={"file": (name, jpeg(), "image/jpeg")})

    def raw(self, name: str) -> httpx.Response:
        return httpx.post(self.pages, content=jpeg(), headers=self.demo.h(
            "王芳", **{"Content-Type": "image/jpeg", "X-File-Name": quote(name)}))

    def form(self, name: str) -> httpx.Response:
        """The case page's upload form, as a signed-in browser sends it (same origin)."""
        version = self.case()["version"]
        with httpx.Client(base_url=self.url) as browser:
            assert page_login(browser, self.demo.tokens["王芳"]).status_code == 303
            session = browser.cookies[web.COOKIE]
            return browser.post(f"/ui/cases/{self.number}/materials/license/pages",
                                headers={"Origin": origin_of(browser)},
                                data={"csrf": web.csrf_for(session), "version": version},
                                files={"file": (name, jpeg(), "image/jpeg")})

    def case(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/api/v1/cases/{self.number}", headers=self.demo.h("王芳")).json())

    def stored(self) -> tuple[list[str | None], int]:
        with self.demo.engine.connect() as conn:
            names = conn.execute(sa.text("SELECT original_name FROM case_pages ORDER BY id")).scalars().all()
        return list(names), len([p for p in self.store.root.rglob("*") if p.is_file()])

    def event_names(self) -> list[str]:
        r = httpx.get(f"{self.url}/api/v1/cases/{self.number}/history", headers=self.demo.h("王芳"))
        return [e["data"]["name"] for e in r.json()["items"] if e["kind"] == "page_added"]


@pytest.fixture
def site(demo: Demo, serve_app: Any, tmp_path: Path) -> Iterator[Site]:
    store = LocalStore(tmp_path / "objects")
    app = demo.client.app
    app.dependency_overrides[documents.get_object_store] = lambda: store  # type: ignore[attr-defined]
    app.dependency_overrides[scans_ui.object_store] = lambda: store  # type: ignore[attr-defined]

    def session(request: Request) -> Iterator[Any]:  # as in production: GETs read-only
        with session_scope(demo.engine, readonly=request.method in ("GET", "HEAD")) as s:
            yield s

    app.dependency_overrides[deps.get_session] = session  # type: ignore[attr-defined]
    yield Site(demo, serve_app(app), store)
    thumbnails.worker.wait_idle()


BAD_NAMES = [RLO, ZERO_WIDTH[0], ZERO_WIDTH[3], "a" * (MAX_CHARS + 1), "营" * 86]


def test_every_api_upload_refuses_a_bad_name_and_stores_nothing(site: Site) -> None:
    version = site.case()["version"]
    for name in BAD_NAMES:
        for send, field in ((site.multipart, "file"), (site.raw, "body")):
            r = send(name)
            assert r.status_code == 422, (ascii(name), r.text)
            problem = r.json()
            assert r.headers["content-type"] == "application/problem+json"
            [err] = problem["errors"]
            assert err["field"] == field and err["code"] in ("invisible_character", "name_too_long")
            assert "文件名" in err["reason"]
    assert site.stored() == ([], 0)
    assert site.case()["version"] == version and site.event_names() == []


def test_the_case_page_upload_refuses_a_bad_name_and_stores_nothing(site: Site) -> None:
    r = site.form(RLO)
    assert r.status_code == 422 and "U+202E" in r.text, r.text[:300]
    assert site.stored() == ([], 0)


def test_decomposed_names_are_stored_composed(site: Site) -> None:
    assert DECOMPOSED != COMPOSED and unicodedata.normalize("NFC", DECOMPOSED) == COMPOSED
    r = site.multipart(DECOMPOSED)
    assert r.status_code == 201 and r.json()["original_name"] == COMPOSED, r.text
    r = site.raw("背面" + DECOMPOSED)
    assert r.status_code == 201 and r.json()["original_name"] == "背面" + COMPOSED, r.text
    r = site.form("页" + DECOMPOSED)
    assert r.status_code in (200, 303), r.text[:300]
    names, _ = site.stored()
    assert names == [COMPOSED, "背面" + COMPOSED, "页" + COMPOSED]
    assert site.event_names() == names


# -- files sent in a video room ------------------------------------------------------------------

def test_a_file_sent_in_a_video_room_follows_the_same_rule(demo: Demo, tmp_path: Path) -> None:
    n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")["number"]
    r = demo.client.post(f"/api/v1/cases/{n}/video-rooms", headers=demo.h("王芳"), json={})
    assert r.status_code == 201, r.text
    room_row = r.json()
    store = LocalStore(tmp_path / "objects")
    data = jpeg()

    async def run() -> list[dict[str, Any] | None]:
        hub = Hub(store)
        room = LiveRoom(room_row["id"], n, room_row["state"], room_row["kind"], demo.engine)
        actor = demo.actor("王芳")
        peer = Peer("p1", "clerk", "王芳", actor.id, actor, "key", RTCPeerConnection())
        room.peers[peer.id] = peer

        async def say(**msg: Any) -> dict[str, Any] | None:
            return await messages.handle(hub, room, peer, json.dumps(msg))

        try:
            out = [await say(t="file", id=f"bad{i}", name=name, size=len(data), material="hygiene_rules")
                   for i, name in enumerate(BAD_NAMES)]
            out.append(await say(t="file", id="ok", name=DECOMPOSED, size=len(data), material="hygiene_rules"))
            import base64

            await say(t="chunk", id="ok", data=base64.b64encode(data).decode())
            out.append(await say(t="end", id="ok"))
            return out
        finally:
            await peer.pc.close()

    *refused, ready, done = asyncio.run(run())
    for reply, name in zip(refused, BAD_NAMES, strict=True):
        assert reply is not None and reply["t"] == "error" and reply["field"] == "name", (ascii(name), reply)
        assert reply["code"] in ("invisible_character", "name_too_long") and "文件名" in reply["reason"]
    assert ready == {"t": "file_ready", "id": "ok"}
    assert done is not None and done["ok"] and done["page"]["original_name"] == COMPOSED, done
    with demo.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT original_name FROM case_pages")).scalars().all() == [COMPOSED]
    events = demo.client.get(f"/api/v1/cases/{n}/history", headers=demo.h("王芳")).json()["items"]
    assert [e["data"]["name"] for e in events if e["kind"] == "video_file"] == [COMPOSED]
