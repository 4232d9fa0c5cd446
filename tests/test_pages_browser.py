"""The pages in headless Chromium against a real uvicorn server (demo seeded, SQLite of its own).

Screenshots of every page land in tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import (
    CERT_VALUES,
    DEMO_APPLICANT,
    answer_situations,
    answers_for,
    certificate_data,
    chromium,
    run_jobs,
    serving,
)
from playwright.sync_api import Browser, Page, expect

from api.app import create_app
from core.settings import ROOT
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope

# Chromium looks up Google hosts whatever its flags: the module runs in a network namespace of its own.
pytestmark = [pytest.mark.browser, pytest.mark.netns]

ARTIFACTS = ROOT / "tests" / "artifacts"
ALL_FGS = {m: "received" for m in ("application", "power_of_attorney", "appointment_docs", "license")}



@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    engine: sa.Engine

    def api(self, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kw.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=10, **kw)

    def create(self, who: str, item: str, materials: dict[str, str], **body: Any) -> dict[str, Any]:
        r = self.api(who, "POST", "/api/v1/cases", json={
            "item_code": item, "applicant": {**DEMO_APPLICANT, "name": "接口申请人"},
            "materials": materials, "situation": answers_for(item, materials), **body})
        assert r.status_code == 201, r.text
        return r.json()

    def fire(self, who: str, number: str, trigger: str, version: int) -> dict[str, Any]:
        case = self.api(who, "GET", f"/api/v1/cases/{number}").json()
        r = self.api(who, "POST", f"/api/v1/cases/{number}/triggers/{trigger}", json=certificate_data(case, trigger),
                     headers={"If-Match": f'"{version}"'})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("pages")
    engine = make_engine(f"sqlite:///{tmp / 'tongban.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        tokens = {t["name"]: t["token"]
                  for t in seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml",
                                tmp / "tokens.json", 30)}
    with serving(create_app(engine)) as url:
        yield Server(url, tokens, engine)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    ctx = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    pg = ctx.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    ctx.close()


def login(page: Page, server: Server, who: str, next_path: str = "/ui/") -> None:
    page.goto(f"{server.url}{next_path}")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    page.fill("#token", server.tokens[who])
    page.click("button[type=submit]")


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_clerk_takes_a_case_from_intake_to_completion_by_clicking(page: Page, server: Server) -> None:
    login(page, server, "李强")
    expect(page.locator("h1")).to_contain_text("窗口队列")
    shot(page, "queue")
    page.click("text=＋ 收件")
    with page.expect_navigation():  # the choice submits its form (api/static/forms.js): wait for it
        page.select_option("select[name=item]", "FGSFZRBG")
    page.fill("input[name=name]", "青岛某某贸易有限公司")
    page.fill("input[name=phone]", "0532-86000000")
    page.fill("input[name=id_number]", DEMO_APPLICANT["id_number"])
    page.fill("input[name=address]", "山东省青岛市黄岛区长江中路 216 号")
    for box in page.locator("input[name=materials]").all():
        box.check()
    answer_situations(page)
    shot(page, "intake")
    page.click("button:has-text('确认收件')")
    number = page.locator("#number").inner_text()
    assert re.fullmatch(r"370211\d{13}", number)
    assert len(page.locator("#query-code").inner_text()) == 10
    # F5 on 收件成功 and Back after the POST create nothing: the page was reached by a redirect.
    with server.engine.connect() as conn:
        cases = conn.execute(sa.text("SELECT count(*) FROM cases")).scalar_one()
    page.reload()
    expect(page.locator("#number")).to_have_text(number)
    page.go_back()
    page.go_forward()
    expect(page.locator("#number")).to_have_text(number)
    with server.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM cases")).scalar_one() == cases
    page.click("text=打开办件")
    expect(page.locator("#state-label")).to_have_text("已接件")
    expect(page.locator("#diagram")).to_be_visible()
    shot(page, "case_received")
    for trigger, state in (("forward", "办理地审核"), ("approve", "核准(待出证)"),
                           ("issue", "证照已制发(待领取/寄递)"), ("hand_over", "办结")):
        for field in page.locator("[data-cert]").all():  # the licence's data, beside the approve button
            name = field.get_attribute("data-cert") or ""
            field.fill(CERT_VALUES[name])
        page.click(f"button[data-trigger={trigger}]")
        expect(page.locator("#state-label")).to_have_text(state)
        expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#actions")).to_contain_text("已办结")
    assert page.locator("#timeline li").count() == 5
    shot(page, "case_completed")
    r = server.api("李强", "GET", f"/api/v1/cases/{number}")
    assert r.json()["state"]["id"] == "completed" and r.json()["status"]["label"] == "办结(通过)"


def test_closed_actions_are_disabled_with_their_reason(page: Page, server: Server) -> None:
    case = server.create("王芳", "FGSFZRBG", {"application": "received"}, competent_region="370211",
                         situation={"agent": "agent"})  # 委托代理人: three materials missing
    login(page, server, "王芳", f"/ui/cases/{case['number']}")
    button = page.locator("button[data-trigger=forward]")
    expect(button).to_be_disabled()
    expect(page.locator(".action.closed .reason")).to_contain_text("缺少必要材料")
    # 撤件 needs a comment: the box is there and required.
    expect(page.locator("textarea[name=comment]")).to_be_visible()
    shot(page, "case_closed_actions")
    # Checking the missing materials in opens the action.
    for _ in range(3):
        page.locator("ul.materials button:has-text('标记已收')").first.click()
    expect(button).to_be_enabled()


def test_supervisor_sees_counts_change_without_reloading(page: Page, server: Server) -> None:
    login(page, server, "赵督查")
    expect(page.locator("h1")).to_contain_text("督查看板")
    total = page.locator("#open-total")
    expect(total).not_to_have_text("–")
    page.evaluate("window.__notReloaded = true")
    before = int(total.inner_text())
    case = server.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")
    expect(total).to_have_text(str(before + 1), timeout=15_000)
    # Another clerk moves it along through the API: the state bars follow.
    out = server.fire("王芳", case["number"], "forward", case["version"])
    out = server.fire("李强", case["number"], "approve", out["version"])
    expect(page.locator("#by-state")).to_contain_text("核准(待出证)", timeout=15_000)
    out = server.fire("李强", case["number"], "issue", out["version"])
    server.fire("王芳", case["number"], "hand_over", out["version"])
    expect(total).to_have_text(str(before), timeout=15_000)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#handoffs")).to_contain_text("山东省青岛市")
    expect(page.locator("#chart-throughput svg rect").first).to_be_attached()
    shot(page, "dashboard")


def test_supervisor_of_another_region_sees_none_of_it(page: Page, server: Server) -> None:
    case = server.create("王芳", "FGSFZRBG", ALL_FGS)
    login(page, server, "钱督查")
    expect(page.locator("h1")).to_contain_text("广东省广州市南沙区")
    expect(page.locator("#open-total")).not_to_have_text("–")
    expect(page.locator("#by-counter")).not_to_contain_text("济南")
    options = page.locator("select[name=counter] option").all_inner_texts()
    assert not [o for o in options if "济南" in o or "青岛" in o]
    shot(page, "dashboard_other_region")
    # The data endpoint behind the page refuses another region, with this very session.
    status = page.evaluate("fetch('/api/v1/dashboard?region=370100').then(r => r.status)")
    assert status == 403
    status = page.evaluate("fetch('/api/v1/dashboard?counter=jn-kuayu').then(r => r.status)")
    assert status == 403
    page.goto(f"{server.url}/ui/cases/{case['number']}")
    expect(page.locator(".error")).to_contain_text("不在您督查的区域内")
    page.goto(f"{server.url}/ui/queue?counter=jn-kuayu")
    expect(page.locator(".error")).to_contain_text("不在您督查的区域内")
    assert server.api("钱督查", "GET", f"/api/v1/cases/{case['number']}").status_code == 403
    assert server.api("钱督查", "GET", "/api/v1/cases", params={"counter": "jn-kuayu"}).status_code == 403
    assert server.api("赵督查", "GET", f"/api/v1/cases/{case['number']}").status_code == 200


def test_applicant_progress_page_shows_the_status(page: Page, server: Server) -> None:
    case = server.create("王芳", "FGSFZRBG", ALL_FGS, competent_region="370211")
    page.goto(f"{server.url}/progress")
    page.fill("#number", case["number"])
    page.fill("#code", "WRONGCODE1")
    page.click("button:has-text('查询')")
    expect(page.locator("#error")).to_contain_text("未找到该办件")
    page.fill("#number", case["number"])
    page.fill("#code", case["query_code"])
    page.click("button:has-text('查询')")
    expect(page.locator("#status")).to_contain_text("已接件")
    body = page.locator("#result").inner_text()
    assert "接口申请人" not in body and "王芳" not in body  # nothing personal
    shot(page, "progress")


def test_designer_view_lists_versions_and_reports_problems(page: Page, server: Server) -> None:
    login(page, server, "孙设计")
    expect(page.locator("#catalog")).to_contain_text("公共场所卫生许可")
    page.click("text=分公司负责人变更登记")
    expect(page.locator("img.diagram")).to_be_visible()
    shot(page, "designer_item")
    page.goto(f"{server.url}/ui/designer")
    page.fill("#source", "code: BAD\nname: 坏定义\nversion: 0\nstates: []\n")
    page.click("button:has-text('检查')")
    expect(page.locator("#problems li").first).to_contain_text(re.compile(r"\d+:\d+"))
    shot(page, "designer_problems")


ALL_GGCS = {m: "received" for m in ("application_form", "legal_rep_id", "floor_plans", "hygiene_report",
                                    "hygiene_rules")}


def test_reviewer_opens_the_inspection_from_the_case_page_after_an_ordinary_pause(
        page: Page, server: Server, tmp_path: Path) -> None:
    from core.settings import get_settings
    from storage.object_factory import get_store

    get_settings().object_dir = tmp_path / "objects"
    get_store.cache_clear()
    # 受审分离 at Jinan: 王芳 takes the case in and accepts it; 刘洋 reviews.
    case = server.create("王芳", "GGCSWSXK", ALL_GGCS)
    n = case["number"]
    server.fire("王芳", n, "accept", case["version"])
    run_jobs(server.engine)  # the jobs ran; nothing decided for the reviewer
    page.wait_for_timeout(1500)  # the reviewer takes a moment to open the case
    login(page, server, "刘洋", f"/ui/cases/{n}")
    expect(page.locator("#state-label")).to_have_text("已受理")
    expect(page.locator("#companion")).to_have_text("王芳")
    page.click("button[data-trigger=start_inspection]")
    expect(page.locator("#state-label")).to_have_text("现场踏勘")
    page.reload()  # F5 after the form: the page, not a second transition
    expect(page.locator("#state-label")).to_have_text("现场踏勘")
    shot(page, "case-inspection")
    page.click("#video-open")
    expect(page.locator("h1")).to_contain_text("远程踏勘")
    page.go_back()
    expect(page.locator("#state-label")).to_have_text("现场踏勘")
    page.goto(f"{server.url}/ui/cases/{n}")
    page.click("button[data-trigger=inspection_passed]")
    expect(page.locator("#state-label")).to_have_text("审核")
    page.click("button[data-trigger=approve]")
    expect(page.locator("#state-label")).to_have_text("审批通过(待出证)")
    run_jobs(server.engine)  # the certificate is made, and the job's follow-up issues it
    page.reload()
    expect(page.locator("#state-label")).to_have_text("已出证(待送达)")
    shot(page, "case-issued")
    body = page.locator("body").inner_text()
    assert "jn-kuayu" not in body and "#" not in page.locator("#claims").inner_text()
    events = server.api("刘洋", "GET", f"/api/v1/cases/{n}/history").json()["items"]
    assert [e["trigger"] for e in events if e["kind"] == "transition"] == [
        "accept", "start_inspection", "inspection_passed", "approve", "issue"]
