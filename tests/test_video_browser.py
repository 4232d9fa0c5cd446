"""The applicant's room page in headless Chromium (fake camera and microphone) against a real
uvicorn server: it connects, receives the clerk's video (an aiortc peer), chats, and a
screenshot is kept under tests/artifacts/."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from core.settings import ROOT
from engine import scans
from engine.actors import SYSTEM
from storage.db import session_scope
from storage.object_local import LocalStore
from tests.conftest import Demo
from tests.test_video_media import history_kinds, inspection_case, link, open_room
from video.client import Participant, wait_until
from video.hub import Hub
from video.synthetic import PatternTrack, ToneTrack

# Chromium and an aiortc peer exchange media: the test runs in a network namespace of its own.
pytestmark = [pytest.mark.browser, pytest.mark.netns]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        # Real host candidates instead of mDNS names, which aiortc cannot resolve.
        "--disable-features=WebRtcHideLocalIpsWithMdns"]


# Frames decoded by the page for the clerk's tile, read twice to see them advance.
CLERK_VIDEO = """() => {
  const v = document.querySelector('figure[data-role="clerk"] video');
  if (!v) return null;
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  return {w: v.videoWidth, h: v.videoHeight, frames: q, t: v.currentTime};
}"""


def test_applicant_page_receives_the_clerks_video(sqlite_demo: Demo, serve_app: Any,
                                                  tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    demo = sqlite_demo
    number = inspection_case(demo)
    room = open_room(demo, number)
    clerk_token, applicant_token = link(demo, room, "clerk", "李强"), link(demo, room, "applicant", "张三")
    approver_token = link(demo, room, "approver", "刘洋", clerk_id=demo.actor("刘洋").id)
    store = LocalStore(tmp_path / "objects")
    demo.client.app.state.video_hub = Hub(store=store)  # type: ignore[attr-defined]
    base = serve_app(demo.client.app)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async def scenario() -> dict[str, Any]:
        clerk = Participant(base, clerk_token, [PatternTrack(640, 480), ToneTrack()])
        await clerk.join()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            logs: list[str] = []
            page.on("console", lambda m: logs.append(m.text))
            await page.goto(f"{base}/video/join?t={applicant_token}")
            await page.wait_for_function("() => window.tongbanRoom && window.tongbanRoom.connected",
                                         timeout=20_000)
            await page.wait_for_function(
                "() => { const v = document.querySelector('figure[data-role=\"clerk\"] video');"
                " return v && v.videoWidth > 0; }", timeout=20_000)
            first = await page.evaluate(CLERK_VIDEO)
            await page.wait_for_timeout(1000)
            second = await page.evaluate(CLERK_VIDEO)
            # The clerk (aiortc) receives the page's fake camera too.
            applicant_id = await page.evaluate("() => window.tongbanRoom.me")
            await wait_until(lambda: clerk.received.get(applicant_id) is not None
                             and clerk.received[applicant_id].frames > 5)
            await page.fill("#chat-text", "我是申请人, 画面清楚")
            await page.click("#chat-form button")
            await clerk.wait_message("chat", text="我是申请人, 画面清楚")
            await page.wait_for_function("() => document.querySelector('#chat').textContent.includes('画面清楚')")
            status = await page.text_content("#status")
            await page.screenshot(path=str(ARTIFACTS / "video_applicant_room.png"), full_page=True)

            # The remote approver's page: 拍照存档 of the applicant's camera into a material.
            approver = await browser.new_page(viewport={"width": 1280, "height": 800})
            await approver.goto(f"{base}/video/join?t={approver_token}")
            await approver.wait_for_function(
                f"() => [...document.querySelectorAll('#capture-who option')].some(o => o.value === '{applicant_id}')",
                timeout=20_000)
            await approver.select_option("#capture-who", applicant_id)
            await approver.select_option("#capture-material", "floor_plans")
            await approver.click("#capture-btn")
            await approver.wait_for_function(
                "() => document.querySelector('#chat').textContent.includes('已拍照存档')", timeout=20_000)
            await approver.screenshot(path=str(ARTIFACTS / "video_approver_capture.png"), full_page=True)
            await approver.close()
            await page.click("#leave-btn")
            await page.wait_for_function("() => window.tongbanRoom.closed")
            await browser.close()
        await clerk.close()
        return {"first": first, "second": second, "status": status, "logs": logs}

    out = asyncio.run(scenario())
    first, second = out["first"], out["second"]
    assert first["w"] == 640 and first["h"] == 480, out
    assert second["frames"] > first["frames"] and second["t"] > first["t"], out
    assert out["status"] == "已连接"
    assert (ARTIFACTS / "video_applicant_room.png").stat().st_size > 10_000
    kinds = history_kinds(demo, number)
    assert kinds.count("video_join") == 3 and kinds.count("video_leave") >= 2 and "video_chat" in kinds
    assert "video_capture" in kinds
    with session_scope(demo.engine) as s:
        (shot,) = scans.list_pages(s, number, SYSTEM, "floor_plans")
    with Image.open(io.BytesIO(b"".join(store.get(shot["bucket"], shot["key"])))) as img:
        assert img.format == "JPEG" and img.size == (640, 480)  # Chromium's fake camera
