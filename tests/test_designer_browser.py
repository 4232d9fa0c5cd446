"""The designer page in headless Chromium: a draft with schema and checker problems shows all of
them in one round, each with its line (a click puts the cursor there) and "did you mean"; the
screenshot (1366×768) goes to docs/screenshots/designer_problems.png for a human to look at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import chromium, serving
from playwright.sync_api import Browser, expect
from test_designer_one_round import DRAFT, _line

from api.app import create_app
from core.settings import ROOT
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope

# Chromium looks up Google hosts whatever its flags: the module runs in a network namespace of its own.
pytestmark = [pytest.mark.browser, pytest.mark.netns]

SHOT = ROOT / "docs" / "screenshots" / "designer_problems.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def test_every_problem_in_one_round_on_the_page(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("designer")
    engine = make_engine(f"sqlite:///{tmp / 'tongban.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        tokens = {t["name"]: t["token"] for t in seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml",
                                                        tmp / "tokens.json", 30)}
    with serving(create_app(engine)) as url:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{url}/ui/login")
        page.fill("#token", tokens["孙设计"])
        page.click("button[type=submit]")
        page.goto(f"{url}/ui/designer")
        page.fill("#source", DRAFT)
        with page.expect_navigation():
            page.click("#check-form button.primary")
        problems = page.locator("#problems")
        for text in ("case_type: 须为", "未知字段", "缺少必填字段", "未知的状态 'acepted'", "未知的人员角色 'clerc'",
                     "您是否要写「clerk」"):
            expect(problems).to_contain_text(text)
        expect(page.locator("#diff")).to_contain_text("version: 5")
        expect(page.locator("#publish")).to_be_disabled()
        # The role's problem puts the cursor on its line.
        page.locator("#problems li", has_text="clerc").locator("a.goto").click()
        caret = page.evaluate("() => { const t = document.querySelector('#source');"
                              " return t.value.slice(0, t.selectionStart).split('\\n').length; }")
        assert caret == _line(DRAFT, "clerc")
        page.screenshot(path=str(SHOT), full_page=True)
        ctx.close()
    engine.dispose()
