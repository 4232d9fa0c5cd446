"""The guide in headless Chromium: a question typed into the search, the item's page, its 情形
questions answered by tapping, and exactly those materials listed — on a phone and a desktop.
Screenshots go to docs/screenshots/ (guide_*) for a human to look at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import serving
from playwright.sync_api import Browser, expect, sync_playwright

from api.app import create_app
from core.settings import ROOT
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope

pytestmark = [pytest.mark.browser, pytest.mark.netns]

SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("guide_pages")
    engine = make_engine(f"sqlite:///{tmp / 'tongban.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml", tmp / "tokens.json", 30)
    with serving(create_app(engine)) as base:
        yield base
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.mark.parametrize(("width", "height", "name"), [(390, 844, "phone"), (1366, 768, "desktop")])
def test_search_item_page_situations_and_exact_materials(browser: Browser, url: str, width: int, height: int,
                                                         name: str) -> None:
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                              has_touch=name == "phone", is_mobile=name == "phone")
    page = ctx.new_page()
    page.goto(url + "/guide")
    page.fill("#q", "开个奶茶店要什么材料")
    page.click("#search")
    first = page.locator("#results a.result").first
    expect(first).to_have_text("开办餐饮店一件事")
    page.screenshot(path=str(SHOTS / f"guide_search_{name}.png"), full_page=False)
    first.click()
    expect(page.locator("#item-name")).to_have_text("开办餐饮店一件事")
    assert page.locator("#materials li.material").count() == 8  # every material, before the answers
    page.get_by_label("公司").check()
    page.locator("fieldset", has_text="公众聚集场所").get_by_label("否").check()
    page.screenshot(path=str(SHOTS / f"guide_situations_{name}.png"), full_page=False)
    page.click("#show-materials")
    listed = page.locator("#materials li.material")
    expect(listed).to_have_count(6)
    text = page.locator("#materials").inner_text()
    assert "公司章程" in text and "消防安全检查告知承诺书" not in text and "共 6 项" in text
    # Phone width: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(SHOTS / f"guide_materials_{name}.png"), full_page=True)
    ctx.close()
