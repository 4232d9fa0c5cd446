"""The verification page in headless Chromium: a notice's number, then the upload of its PDF, changed and not.

Screenshots land in tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import run_jobs, serving
from playwright.sync_api import expect, sync_playwright

from api.app import create_app
from core.settings import ROOT
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope

# Chromium looks up Google hosts whatever its flags: the module runs in a network namespace of its own.
pytestmark = [pytest.mark.browser, pytest.mark.netns]

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], object]]:
    tmp = tmp_path_factory.mktemp("verify")
    engine = make_engine(f"sqlite:///{tmp / 'tongban.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        tokens = {t["name"]: t["token"] for t in seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml",
                                                        tmp / "tokens.json", 30)}
    with serving(create_app(engine)) as url:
        yield url, tokens, engine
    engine.dispose()


def test_the_verify_page_for_a_notice_and_an_uploaded_pdf(served: tuple[str, dict[str, str], object],
                                                          tmp_path: Path) -> None:
    url, tokens, engine = served
    auth = {"Authorization": f"Bearer {tokens['王芳']}"}
    r = httpx.post(f"{url}/api/v1/cases", headers=auth, timeout=10, json={
        "item_code": "FGSFZRBG", "applicant": {"name": "青岛某某商贸有限公司黄岛分公司", "kind": "company"},
        "materials": {}})
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    run_jobs(engine)  # type: ignore[arg-type]
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
