"""The guide in headless Chromium: a question typed into the search, the item's page, its 情形
questions answered by tapping, and exactly those materials listed — on a phone and a desktop; a
pre-review uploaded on a phone, commented by a clerk and taken in as a case; the self-service
booth at 1920×1080 with Chromium's fake camera capturing each material into a new case and
printing its receipt, then resetting when left idle; the booth's 视频帮办 call answered by a clerk
of its supervising counter. Screenshots go to docs/screenshots/ (guide_*, prereview_*, kiosk_*,
help_*) for a human to look at."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import CAMERA_ARGS, NO_MDNS, chromium, serving
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

from api.app import create_app
from core.settings import ROOT
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope

pytestmark = [pytest.mark.browser, pytest.mark.netns]

SHOTS = ROOT / "docs" / "screenshots"


@dataclass
class Site:
    url: str
    engine: sa.Engine
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from core.settings import get_settings
    from storage.object_factory import get_store

    tmp = tmp_path_factory.mktemp("guide_pages")
    get_settings().object_dir = tmp / "objects"
    get_store.cache_clear()
    engine = make_engine(f"sqlite:///{tmp / 'tongban.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        tokens = seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml", tmp / "tokens.json", 30)
    with serving(create_app(engine)) as base:
        yield Site(base, engine, {t["name"]: t["token"] for t in tokens})
    engine.dispose()


@pytest.fixture(scope="module")
def url(site: Site) -> str:
    return site.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium(*CAMERA_ARGS, NO_MDNS) as b:
        yield b


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


def _login(page: Page, site: Site, who: str) -> None:
    page.goto(site.url + "/ui/login")
    page.fill("#token", site.tokens[who])
    page.click("button[type=submit]")
    expect(page).not_to_have_url(re.compile(r"/ui/login"))


def _png(shade: int = 235) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (shade, shade, 230)).save(buf, "PNG")
    return buf.getvalue()


def test_a_prereview_on_a_phone_commented_by_a_clerk_becomes_a_case(browser: Browser, site: Site) -> None:
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", has_touch=True,
                                is_mobile=True)
    applicant = phone.new_page()
    applicant.goto(site.url + "/guide/YDJYBA")
    applicant.get_by_label("常驻异地工作").check()
    applicant.get_by_label("参保人本人办理").check()
    applicant.click("#show-materials")
    applicant.click("#prereview-link")
    expect(applicant.locator("#prereview-form input[type=file]")).to_have_count(3)
    applicant.fill("#phone", "13800138000")
    png = _png()
    applicant.locator("input[data-material=filing_form]").set_input_files(
        files=[{"name": "备案表.png", "mimeType": "image/png", "buffer": png}])
    applicant.locator("input[data-material=work_proof]").set_input_files(
        files=[{"name": "工作证明.png", "mimeType": "image/png", "buffer": png}])
    assert applicant.evaluate("document.documentElement.scrollWidth") <= 390
    applicant.screenshot(path=str(SHOTS / "prereview_upload_phone.png"), full_page=True)
    applicant.click("#submit-prereview")
    expect(applicant.locator("#prereview-status")).to_have_text("待预审")
    code = applicant.locator("#prereview-code").inner_text()
    status_url = applicant.url

    desk = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    clerk = desk.new_page()
    _login(clerk, site, "陈静")
    clerk.goto(site.url + "/ui/prereviews")
    clerk.click(f"a[href='/ui/prereviews/{code}']")
    first = clerk.locator("#m-filing_form form")
    first.get_by_label("需修改").check()
    first.get_by_placeholder("修改意见").fill("备案表未签名, 请签名后重新上传")
    first.get_by_role("button", name="保存意见").click()
    expect(clerk.locator("#m-filing_form")).to_contain_text("备案表未签名")
    second = clerk.locator("#m-work_proof form")
    second.get_by_label("合格").check()
    second.get_by_role("button", name="保存意见").click()
    expect(clerk.locator("#m-work_proof")).to_contain_text("合格")
    clerk.screenshot(path=str(SHOTS / "prereview_clerk.png"), full_page=True)

    applicant.goto(status_url)
    expect(applicant.locator("#m-filing_form")).to_contain_text("需修改: 备案表未签名")
    expect(applicant.locator("#m-insured_id")).to_contain_text("未上传")
    applicant.screenshot(path=str(SHOTS / "prereview_comments_phone.png"), full_page=True)
    # 重新上传: the draft marked 需修改 goes again (the passed one has no input), back to 待预审.
    expect(applicant.locator("#m-work_proof input[type=file]")).to_have_count(0)
    applicant.locator("#m-filing_form input[type=file]").set_input_files(
        files=[{"name": "备案表-已签名.png", "mimeType": "image/png", "buffer": _png(200)}])
    applicant.click("#submit-resubmit")
    expect(applicant.locator("#prereview-status")).to_have_text("待预审")
    expect(applicant.locator("#m-filing_form")).to_contain_text("已上传, 等待预审 (第 2 版)")
    expect(applicant.locator("#m-filing_form .earlier")).to_contain_text("备案表未签名")
    assert applicant.evaluate("document.documentElement.scrollWidth") <= 390

    clerk.reload()
    expect(clerk.locator("#m-filing_form")).to_contain_text("第 2 版")
    expect(clerk.locator("#m-filing_form .earlier")).to_contain_text("第 1 版")
    expect(clerk.locator("#m-filing_form .earlier")).to_contain_text("备案表未签名, 请签名后重新上传")
    expect(clerk.locator("#m-filing_form .draft-link")).to_have_text("备案表-已签名.png")
    clerk.screenshot(path=str(SHOTS / "prereview_clerk_versions.png"), full_page=True)
    again = clerk.locator("#m-filing_form form")
    again.get_by_label("合格").check()
    again.get_by_role("button", name="保存意见").click()
    expect(clerk.locator("#prereview-status")).to_have_text("已预审")

    clerk.fill("#applicant-name", "王五")
    clerk.fill("#applicant-id", "11010519491231002X")
    clerk.click("#make-case")
    expect(clerk.locator("h1")).to_have_text("收件成功")
    number = clerk.locator("#number").inner_text()
    clerk.goto(f"{site.url}/ui/prereviews/{code}")
    expect(clerk.locator("#case-link")).to_have_text(number)
    clerk.click("#case-link")
    expect(clerk.locator("body")).to_contain_text("异地工作证明或个人承诺书")
    expect(clerk.locator("#timeline")).to_contain_text(f"来自预审 {code}")
    expect(clerk.locator("body")).to_contain_text("13800138000")  # the phone given at pre-review
    clerk.screenshot(path=str(SHOTS / "prereview_case.png"), full_page=True)
    applicant.reload()
    expect(applicant.locator("#case-number")).to_have_text(number)
    desk.close()
    phone.close()


def test_the_booth_captures_each_material_into_a_case_prints_the_receipt_and_resets(
        browser: Browser, site: Site) -> None:
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", has_touch=True)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    _login(page, site, "自助终端01")
    page.clock.install()
    page.goto(site.url + "/kiosk")
    page.screenshot(path=str(SHOTS / "kiosk_start.png"))
    page.tap("#start")
    _spell(page, "wang", "王")  # the built-in reader: the on-screen pinyin keyboard
    expect(page.locator("#name")).to_have_value("王")
    page.tap("#id-number")
    for key in "110105":
        page.tap(f"#keypad [data-key='{key}']")
    # A card reader's driver hands the card over through the reader interface.
    page.evaluate("window.tongbanKiosk.card({name: '王五', id_number: '11010519491231002x'}); 0")
    page.tap("#phone")
    for key in "13800138000":
        page.tap(f"#keypad [data-key='{key}']")
    expect(page.locator("#id-number")).to_have_value("11010519491231002X")
    page.screenshot(path=str(SHOTS / "kiosk_identify.png"))
    page.tap("#to-items")
    for letter in "YDJY":  # pinyin initials through the guide's search
        page.tap(f"#letters [data-letter='{letter}']")
    page.tap("#search")
    found = page.locator("#results .tile").first
    expect(found).to_have_text("基本医疗保险跨省异地就医备案")
    page.screenshot(path=str(SHOTS / "kiosk_items.png"))
    found.tap()
    page.get_by_role("button", name="常驻异地工作").tap()
    page.get_by_role("button", name="参保人本人办理").tap()
    page.screenshot(path=str(SHOTS / "kiosk_situations.png"))
    page.tap("#to-capture")
    expect(page.locator("#camera[data-ready]")).to_be_visible()  # the fake camera's test pattern
    names = []
    for i in range(3):  # 备案表, 身份证件, 异地工作证明: exactly this 情形's list
        names.append(page.locator("#cap-name").inner_text())
        page.tap("#shoot")
        expect(page.locator("#cap-thumbs img")).to_have_count(1)
        if i == 0:
            page.screenshot(path=str(SHOTS / "kiosk_capture.png"))
        page.tap("#cap-next")
    assert names == ["参保人员跨省异地就医备案表", "参保人有效身份证件或社会保障卡", "异地工作证明或个人承诺书"]
    expect(page.locator("#summary")).to_contain_text("1101**********002X")
    page.screenshot(path=str(SHOTS / "kiosk_confirm.png"))
    page.tap("#submit")
    expect(page).to_have_url(re.compile(r"/kiosk/done/"))
    number = page.locator("#number").inner_text()
    expect(page.locator("#received")).to_contain_text("异地工作证明或个人承诺书 1 页")
    page.evaluate("window.printed = 0; window.print = () => { window.printed += 1; }; 0")  # not a function
    page.tap("#print")
    assert page.evaluate("window.printed") == 1
    page.screenshot(path=str(SHOTS / "kiosk_done.png"))
    page.emulate_media(media="print")
    page.screenshot(path=str(SHOTS / "kiosk_receipt_print.png"), full_page=True)
    page.emulate_media(media="screen")
    # (The sealed PDF the submission queued is drawn by a job: test_guide checks it, without a browser.)
    with session_scope(site.engine, readonly=True) as s:
        from engine.advance import load_case

        case = load_case(s, number)
        assert case["intake_counter_id"] == "pd-zhengwu" and case["companion_id"] is None
    done_url = page.url
    _receipt_stays_on_booth_pages(page, done_url)
    page.goto(done_url)
    expect(page.locator("#number")).to_have_text(number)
    page.clock.fast_forward("01:05")  # left idle: back to the start, nothing of the applicant on screen
    expect(page).to_have_url(re.compile(r"/kiosk$"))
    expect(page.locator("#s-start")).to_be_visible()
    assert number not in page.content() and "王五" not in page.content()
    ctx.close()


def _receipt_stays_on_booth_pages(page: Page, done_url: str) -> None:
    """查看盖章的电子凭证 opens a booth page framing the PDF (its bar, idle reset, 返回首页), never
    the bare PDF; the wait page, framed or not, resets the whole booth; an expired result is a
    booth page too."""
    from datetime import timedelta
    from urllib.parse import urlsplit

    from core import clock

    page.tap("#receipt-pdf")
    expect(page).to_have_url(re.compile(r"/kiosk/receipt/[^/]+/view$"))
    expect(page.locator("#home")).to_be_visible()
    assert page.locator("body").get_attribute("data-idle") == "60"
    assert page.locator("script[src='/static/kiosk.js']").count() == 1
    receipt_url = done_url.replace("/done/", "/receipt/")
    assert page.locator("#receipt-frame").get_attribute("src") == urlsplit(receipt_url).path
    framed = page.frame_locator("#receipt-frame")
    expect(framed.locator("h1")).to_have_text("正在制作收件凭证, 请稍候…")  # not drawn yet: the job queue runs apart
    expect(framed.locator("body.framed")).to_have_count(1)
    expect(framed.locator("#home")).to_be_hidden()  # one bar: the viewer's
    page.screenshot(path=str(SHOTS / "kiosk_receipt_view.png"))
    page.clock.fast_forward("01:05")  # idle on the viewer: the whole booth resets
    expect(page).to_have_url(re.compile(r"/kiosk$"))
    expect(page.locator("#s-start")).to_be_visible()

    page.goto(receipt_url)  # the wait page on its own: a booth page, with 返回首页
    expect(page.locator("#s-wait")).to_be_visible()
    page.tap("#home")
    expect(page).to_have_url(re.compile(r"/kiosk$"))

    with clock.frozen(clock.now() + timedelta(minutes=4)):  # past the three minutes a result shows
        for gone in (done_url, receipt_url + "/view"):
            response = page.goto(gone)
            assert response is not None and response.status == 404
            expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            expect(page.locator("#s-gone h1")).to_have_text("办理结果已不再显示")
            assert page.locator("#number").count() == 0 and "王五" not in page.content()
        page.screenshot(path=str(SHOTS / "kiosk_gone.png"))
        page.tap("#home-big")
        expect(page).to_have_url(re.compile(r"/kiosk$"))


def _spell(page: Page, letters: str, char: str) -> None:
    """Spell ``letters`` on the booth's pinyin keyboard and tap ``char`` among the candidates."""
    for letter in letters:
        page.tap(f"#pinyin [data-letter='{letter}']")
    page.tap(f"#candidates [data-char='{char}']")


def _booth(browser: Browser, site: Site) -> tuple[BrowserContext, Page]:
    ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", has_touch=True)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    _login(page, site, "自助终端01")
    return ctx, page


def _tap_numbers(page: Page, field: str, digits: str) -> None:
    page.tap(field)
    for key in digits:
        page.tap(f"#keypad [data-key='{key}']")


def _submit_ydjyba(page: Page) -> str:
    """From the item screen: 跨省异地就医备案 as 常驻异地工作 in person, its three materials shot by
    the fake camera, submitted; the new case's number."""
    page.tap("#tiles .tile[data-code='YDJYBA']")
    page.get_by_role("button", name="常驻异地工作").tap()
    page.get_by_role("button", name="参保人本人办理").tap()
    page.tap("#to-capture")
    expect(page.locator("#camera[data-ready]")).to_be_visible()
    for _ in range(3):
        page.tap("#shoot")
        expect(page.locator("#cap-thumbs img")).to_have_count(1)
        page.tap("#cap-next")
    page.tap("#submit")
    expect(page).to_have_url(re.compile(r"/kiosk/done/"))
    return page.locator("#number").inner_text()


def _connect_src(response: Response | None) -> str:
    assert response is not None
    csp = dict(d.strip().partition(" ")[::2] for d in response.headers["content-security-policy"].split(";"))
    return csp["connect-src"]


def test_the_booth_takes_a_name_on_its_pinyin_keyboard_with_taps_alone(browser: Browser, site: Site) -> None:
    """张伟 spelt zhang → 张, wei → 伟 on the touch pinyin keyboard (surnames ranked first for the
    first character), the ID number and phone on the keypad: no key pressed on any keyboard, and
    the case has the name. Left idle half-way, the booth forgets what was entered."""
    ctx, page = _booth(browser, site)
    page.clock.install()
    response = page.goto(site.url + "/kiosk")
    assert _connect_src(response) == "'self'"  # no reader service configured: this origin only
    page.tap("#start")
    expect(page.locator("#pinyin")).to_be_visible()
    expect(page.locator("#keypad")).to_be_hidden()
    for letter in "zhang":
        page.tap(f"#pinyin [data-letter='{letter}']")
    expect(page.locator("#spelling")).to_have_text("zhang")
    expect(page.locator("#candidates .cand").first).to_have_text("张")  # as a surname, 张 before 长 and 章
    expect(page.locator("#pinyin [data-letter='q']")).to_be_disabled()  # no syllable starts "zhangq"
    page.tap("#candidates [data-char='张']")
    page.tap("#pinyin [data-letter='w']")
    page.clock.fast_forward("01:05")  # left idle: the booth starts again, nothing entered is kept
    expect(page.locator("#s-start")).to_be_visible()
    page.tap("#start")
    expect(page.locator("#name")).to_have_value("")
    expect(page.locator("#spelling")).to_have_text("")
    expect(page.locator("#candidates .cand")).to_have_count(0)

    page.evaluate("window.keys = 0; for (const e of ['keydown', 'keypress', 'keyup', 'beforeinput']) "
                  "document.addEventListener(e, () => { window.keys += 1; }, true); 0")
    _spell(page, "zhang", "张")
    for letter in "wei":
        page.tap(f"#pinyin [data-letter='{letter}']")
    expect(page.locator("#candidates .cand[data-char='伟']")).to_be_visible()  # on the first page
    page.screenshot(path=str(SHOTS / "kiosk_pinyin.png"))
    page.tap("#candidates [data-char='伟']")
    _spell(page, "li", "丽")
    expect(page.locator("#name")).to_have_value("张伟丽")
    page.tap("#name-back")
    expect(page.locator("#name")).to_have_value("张伟")
    _tap_numbers(page, "#id-number", "11010519491231002X")
    expect(page.locator("#pinyin")).to_be_hidden()
    page.tap("#keypad [data-key='clear']")
    expect(page.locator("#id-number")).to_have_value("")
    _tap_numbers(page, "#id-number", "11010519491231002X")
    _tap_numbers(page, "#phone", "13800138000")
    page.tap("#name")  # back to the name: its keyboard again
    expect(page.locator("#pinyin")).to_be_visible()
    assert page.evaluate("window.keys") == 0  # taps only: not one key event
    page.tap("#to-items")
    number = _submit_ydjyba(page)
    with session_scope(site.engine, readonly=True) as s:
        from engine.advance import load_case

        case = load_case(s, number)
        assert case["applicant"]["name"] == "张伟" and case["applicant"]["id_number"] == "11010519491231002X"
    ctx.close()


@pytest.fixture
def card_reader(tmp_path: Path) -> Iterator[tuple[str, Path, Path, subprocess.Popen[bytes]]]:
    """The booth's reader service, a process answering on 127.0.0.1: (its card URL, the card
    file, its request log, the process)."""
    card, log = tmp_path / "card.json", tmp_path / "requests.log"
    log.touch()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "card_reader_service.py"),
                             "--card", str(card), "--log", str(log)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    try:
        yield f"http://127.0.0.1:{port}/card", card, log, proc
    finally:
        proc.kill()
        proc.wait(10)


def test_the_booths_card_reader_service_fills_the_card_in_and_its_absence_leaves_the_screen_keyboard(
        browser: Browser, site: Site, card_reader: tuple[str, Path, Path, subprocess.Popen[bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The booth's reader service (settings.kiosk_card_readers) is polled while the identify
    screen shows, and only then: a card placed fills name and ID number; the page may connect to
    that origin alone; with the service gone, a zh-CN line says so and the screen keyboard takes
    the name."""
    from core.settings import get_settings

    url, card, log, proc = card_reader
    monkeypatch.setattr(get_settings(), "kiosk_card_readers", {"pd-zizhu-01": url})
    requests = lambda: len(log.read_text().splitlines())  # noqa: E731
    ctx, page = _booth(browser, site)
    response = page.goto(site.url + "/kiosk")
    assert _connect_src(response) == f"'self' {url.removesuffix('/card')}"  # that origin, nothing wider
    page.wait_for_timeout(1500)
    assert requests() == 0  # not polled on the start screen
    page.tap("#start")
    expect(page.locator("#reader-status")).to_have_text("请将居民身份证放在读卡区, 或点按下方屏幕键盘输入。")
    assert requests() >= 1
    card.write_text(json.dumps({"name": "李娜", "id_number": "11010519491231002x"}), encoding="utf-8")
    expect(page.locator("#name")).to_have_value("李娜")
    expect(page.locator("#id-number")).to_have_value("11010519491231002X")
    expect(page.locator("#reader-status")).to_have_text("已读取身份证, 请核对并填写手机号码。")
    expect(page.locator("#keypad")).to_be_visible()  # the phone is next, on the keypad
    for key in "13900139000":
        page.tap(f"#keypad [data-key='{key}']")
    page.tap("#to-items")
    expect(page.locator("#s-items")).to_be_visible()
    seen = requests()
    page.wait_for_timeout(2500)
    assert requests() == seen  # stopped once the identify screen is left
    page.tap("#home")  # 返回首页: nothing of the card is left on screen
    expect(page.locator("#s-start")).to_be_visible()
    assert "李娜" not in page.content() and "002X" not in page.content()

    proc.kill()  # the reader's service is not running
    proc.wait(10)
    page.goto(site.url + "/kiosk")
    page.tap("#start")
    expect(page.locator("#reader-status")).to_have_text("读卡器未连接, 请点按下方屏幕键盘输入姓名和身份证号。")
    _spell(page, "li", "李")
    _spell(page, "na", "娜")
    expect(page.locator("#name")).to_have_value("李娜")
    page.screenshot(path=str(SHOTS / "kiosk_reader_offline.png"))
    ctx.close()


def test_the_booths_video_help_call_is_answered_by_a_clerk_of_its_supervising_counter(
        browser: Browser, site: Site) -> None:
    kiosk = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", has_touch=True)
    booth = kiosk.new_page()
    booth.set_default_timeout(15_000)
    _login(booth, site, "自助终端01")
    booth.goto(site.url + "/kiosk")
    booth.tap("#help-call")
    expect(booth).to_have_url(re.compile(r"/video/join\?t="))
    expect(booth.locator("#status")).to_have_attribute("data-state", "connected")
    booth.screenshot(path=str(SHOTS / "kiosk_help_call.png"))
    desk = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    clerk = desk.new_page()
    clerk.set_default_timeout(15_000)
    _login(clerk, site, "陈静")
    clerk.goto(site.url + "/ui/help")
    call = clerk.locator("#help-calls tr.call")
    expect(call).to_have_count(1)
    expect(call).to_contain_text("政务直办间 1 号自助终端")
    expect(call).to_contain_text("等待接听")
    clerk.screenshot(path=str(SHOTS / "help_calls.png"))
    call.get_by_role("button", name="接听").click()
    expect(clerk.locator("#status")).to_have_attribute("data-state", "connected")
    for page in (booth, clerk):  # each side sees the other in the room
        expect(page.locator("#people li")).to_have_count(2)
        expect(page.locator("#remotes video").first).to_be_visible()
    clerk.screenshot(path=str(SHOTS / "help_room_clerk.png"))
    booth.screenshot(path=str(SHOTS / "kiosk_help_room.png"))
    clerk.click("#end-btn")
    expect(booth.locator("#status")).to_have_attribute("data-state", "closed")
    booth.click("#back-link")
    expect(booth).to_have_url(re.compile(r"/kiosk$"))
    clerk.goto(site.url + "/ui/help")
    expect(clerk.locator("#no-calls")).to_be_visible()
    desk.close()
    kiosk.close()
