"""The verification page in headless Chromium: a notice's number, then the upload of its PDF, changed and not.

Screenshots land in tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import run_jobs
from playwright.sync_api import expect, sync_playwright

from core.settings import ROOT
from tests import test_pages_browser
from tests.test_pages_browser import Server

# Chromium looks up Google hosts whatever its flags: the module runs in a network namespace of its own.
pytestmark = [pytest.mark.browser, pytest.mark.netns]

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
server = test_pages_browser.server  # the seeded server (a module-scoped fixture), one of this module's own


def test_the_verify_page_for_a_notice_and_an_uploaded_pdf(server: Server, tmp_path: Path) -> None:
    url, auth = server.url, {"Authorization": f"Bearer {server.tokens['王芳']}"}
    number = server.create("王芳", "FGSFZRBG", {})["number"]
    assert httpx.post(f"{url}/api/v1/cases/{number}/documents/receipt/drawing", headers=auth,
                      timeout=10).status_code == 202
    run_jobs(server.engine)
    docs = httpx.get(f"{url}/api/v1/cases/{number}/documents", headers=auth, timeout=10).json()["items"]
    receipt = next(d for d in docs if d["kind"] == "receipt")
    pdf = httpx.get(url + receipt["content_url"], headers=auth, timeout=10, follow_redirects=True).content
    (ARTIFACTS / "receipt.pdf").parent.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "receipt.pdf").write_bytes(pdf)
    good, changed = tmp_path / "收件凭证.pdf", tmp_path / "收件凭证-改.pdf"
    good.write_bytes(pdf)
    changed.write_bytes(pdf[:400] + bytes([pdf[400] ^ 1]) + pdf[401:])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 900, "height": 1100})
        page.goto(f"{url}/verify/{receipt['number']}")
        expect(page.locator("#verdict")).to_contain_text("真实有效")
        expect(page.locator("#signature")).to_contain_text("签名有效")
        assert page.evaluate("getComputedStyle(document.querySelector('.v')).paddingTop") != "0px"
        page.screenshot(path=str(ARTIFACTS / "verify-notice.png"), full_page=True)
        page.set_input_files("input[name=file]", str(good))
        page.click("button[type=submit]")
        expect(page.locator("#verdict")).to_contain_text("签章有效")
        expect(page.locator("#report")).to_contain_text(receipt["number"])
        page.screenshot(path=str(ARTIFACTS / "verify-upload.png"), full_page=True)
        page.set_input_files("input[name=file]", str(changed))
        page.click("button[type=submit]")
        expect(page.locator("#verdict")).to_contain_text("签章无效")
        expect(page.locator("#report")).to_contain_text("本平台没有这份文件的签发记录")
        page.screenshot(path=str(ARTIFACTS / "verify-upload-changed.png"), full_page=True)
        browser.close()
