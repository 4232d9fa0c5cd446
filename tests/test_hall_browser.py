"""The hall in headless Chromium, one walk against a real uvicorn server (demo seeded, SQLite of its
own, the clock frozen on a Monday morning in Beijing): an applicant books on a phone, a walk-in
takes a number at the ticket machine, the window checks the booking in, calls it before the
walk-in, and takes the application in at that window; the hall display shows the call; the
walk-in rates the visit 非常不满意 on the window's pad; the supervisor rectifies and follows up,
the window appeals, the supervisor of the region above upholds it, and the figures follow.

Screenshots of each page land in docs/screenshots/ (1366×768; the pad at a tablet's 1024×768,
the booking also at a phone's 390×844).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import DEMO_APPLICANT, chromium, serving
from playwright.sync_api import Browser, BrowserContext, Page, expect

from api.app import create_app
from core import clock
from core.settings import ROOT, get_settings
from engine.actors import add_clerk
from engine.dashboard import set_supervised_regions
from engine.demo import seed
from storage import migrate
from storage.db import make_engine, session_scope
from storage.object_factory import get_store
from storage.tables import Region

# Chromium looks up Google hosts whatever its flags: the module runs in a network namespace of its own.
pytestmark = [pytest.mark.browser, pytest.mark.netns]

SHOTS = ROOT / "docs" / "screenshots"
MONDAY = datetime(2026, 12, 7, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
DESKTOP = {"width": 1366, "height": 768}
TABLET = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}


@dataclass
class Hall:
    url: str
    tokens: dict[str, str]
    engine: sa.Engine


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hall]:
    tmp = tmp_path_factory.mktemp("hall")
    settings = get_settings()
    objects, rate = settings.object_dir, settings.progress_rate_per_minute
    settings.object_dir, settings.progress_rate_per_minute = tmp / "objects", 1000
    get_store.cache_clear()
    engine = make_engine(f"sqlite:///{tmp / 'tongban.db'}")
    migrate.upgrade(engine)
    with session_scope(engine) as s:
        tokens = {t["name"]: t["token"]
                  for t in seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml",
                                tmp / "tokens.json", 30)}
        s.add(Region(code="310000", name="上海市"))
        s.flush()
        clerk, token = add_clerk(s, "孙市督查", None, ["supervisor"], 30)  # the region above 浦东新区
        set_supervised_regions(s, clerk, ["310000"])
        tokens["孙市督查"] = token
    try:
        with clock.frozen(MONDAY), serving(create_app(engine)) as url:
            yield Hall(url, tokens, engine)
    finally:
        engine.dispose()
        settings.object_dir, settings.progress_rate_per_minute = objects, rate
        get_store.cache_clear()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as b:
        yield b


def context(browser: Browser, viewport: dict[str, int]) -> BrowserContext:
    ctx = browser.new_context(viewport=viewport, locale="zh-CN")
    ctx.set_default_timeout(10_000)
    return ctx


def signed_in(browser: Browser, hall: Hall, who: str, path: str, viewport: dict[str, int] = DESKTOP) -> Page:
    page = context(browser, viewport).new_page()
    page.goto(f"{hall.url}{path}")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    page.fill("#token", hall.tokens[who])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(path.split("?")[0])))
    return page


def shot(page: Page, name: str, full: bool = False) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def no_english_or_ids(page: Page) -> None:
    """What a person reads is Chinese: no internal ids, no English words beyond the brand."""
    text = page.locator("main").inner_text()
    assert "pd-zhengwu" not in text and "GGCSWSXK" not in text, text
    words = set(re.findall(r"[A-Za-z]{4,}", text)) - {"Tongban", "YYYY"}
    assert not words, words


def test_booking_ticket_call_intake_rating_rectification_appeal_and_figures(browser: Browser, hall: Hall) -> None:
    # An applicant books on a phone: item, counter, day, slot, then name and mobile number.
    phone = context(browser, PHONE).new_page()
    phone.goto(f"{hall.url}/booking")
    phone.select_option("#item", "GGCSWSXK")
    phone.click("#next")
    phone.select_option("#counter", "pd-zhengwu")
    phone.click("#next")
    phone.select_option("#date", "2026-12-07")
    phone.click("#next")
    phone.click("#slots label:has(input[value='09:30'])")
    phone.fill("#name", "张三")
    phone.fill("#phone", "13800000021")
    no_english_or_ids(phone)
    shot(phone, "booking_phone", full=True)
    phone.click("#book")
    expect(phone).to_have_url(re.compile(r"/booking/done$"))
    code = phone.locator("#code").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{10}", code)
    expect(phone.locator("#status")).to_have_text("已预约")
    shot(phone, "booking_done_phone")
    desk = context(browser, DESKTOP).new_page()
    desk.goto(f"{hall.url}/booking?item=GGCSWSXK&counter=pd-zhengwu&date=2026-12-07")
    expect(desk.locator("#slots")).to_contain_text("余 1 个")  # the place is taken
    shot(desk, "booking")

    # A walk-in takes a number at the ticket machine.
    desk.goto(f"{hall.url}/hall/ticket")
    desk.select_option("#ticket-counter", "pd-zhengwu")
    desk.click("#ticket-next")
    desk.click("#item-GGCSWSXK")  # a counter without groups lists its items at once
    expect(desk.locator("#ticket-number")).to_have_text("A001")
    expect(desk.locator("#ticket-status")).to_contain_text("前面还有 0 人")
    no_english_or_ids(desk)
    shot(desk, "hall_ticket")

    # 09:35: the booked applicant arrives; the window checks the booking in and calls it first.
    clock.advance(timedelta(minutes=95))
    clerk = signed_in(browser, hall, "陈静", "/ui/hall/call")
    clerk.fill("#checkin-code", code.lower())
    clerk.click("#checkin")
    expect(clerk.locator("#issued")).to_contain_text("P001")
    clock.advance(timedelta(minutes=3))
    clerk.click("#call-next")
    expect(clerk.locator("#called")).to_contain_text("P001")
    expect(clerk.locator("#called")).to_contain_text("预约签到")
    no_english_or_ids(clerk)
    shot(clerk, "hall_call")
    board = context(browser, DESKTOP).new_page()
    board.goto(f"{hall.url}/hall?counter=pd-zhengwu")
    expect(board.locator("#latest")).to_have_text("P001")
    expect(board.locator("#latest-window")).to_contain_text("浦东新区")
    expect(board.locator("#waiting")).to_contain_text("1")
    # A001 waits since 08:00; P001 waited 3 minutes for its call.
    expect(board.locator("#wait-times")).to_contain_text("等候最久的已等 98 分钟 · 今日平均等候 3.0 分钟")
    no_english_or_ids(board)
    shot(board, "hall_display")

    # Intake at the called window: the item the booking was for is chosen already.
    clock.advance(timedelta(minutes=7))
    clerk.click("#intake-called")
    expect(clerk).to_have_url(re.compile(r"/ui/cases/new\?item=GGCSWSXK"))
    clerk.fill("input[name=name]", "张三")
    clerk.fill("input[name=phone]", "13800000021")
    clerk.fill("input[name=id_number]", DEMO_APPLICANT["id_number"])
    clerk.fill("input[name=address]", DEMO_APPLICANT["address"])
    for box in clerk.locator("input[name=materials]").all():
        box.check()
    clerk.click("button:has-text('确认收件')")
    number = clerk.locator("#number").inner_text()
    query_code = clerk.locator("#query-code").inner_text()
    assert re.fullmatch(r"310115\d{13}", number)
    with hall.engine.begin() as conn:
        assert conn.execute(sa.text("SELECT intake_counter_id FROM cases WHERE number = :n"),
                            {"n": number}).scalar_one() == "pd-zhengwu"
        # 办结 is the lifecycle's (walked in test_pages_browser); here only its mark counts.
        conn.execute(sa.text("UPDATE cases SET finished_at = updated_at WHERE number = :n"), {"n": number})

    # 一事一评 on the phone, from the receipt's QR code (the case number comes along, the code is typed).
    phone.goto(f"{hall.url}/progress?number={number}")
    expect(phone.locator("#number")).to_have_value(number)
    phone.fill("#code", query_code)
    phone.click("#progress-form button[type=submit]")
    phone.check("#rate-levels input[value='4']")
    phone.locator("#rate-form input[name=code]").fill(query_code)
    no_english_or_ids(phone)
    shot(phone, "progress_rating_phone", full=True)
    phone.click("#rate")
    expect(phone.locator("#done")).to_contain_text("感谢您的评价: 满意")

    # The walk-in is called next and rates the visit on the window's pad (a tablet).
    clock.advance(timedelta(minutes=20))
    clerk.goto(f"{hall.url}/ui/hall/call")
    clerk.click("#call-next")
    expect(clerk.locator("#called")).to_contain_text("A001")
    assert board.locator("meta[http-equiv=refresh]").get_attribute("content") == "5"  # it refreshes itself
    board.reload()
    expect(board.locator("#latest")).to_have_text("A001")
    pad = signed_in(browser, hall, "浦东综合窗口评价器", "/ui/hall/pad", TABLET)
    expect(pad.locator("#pad")).to_contain_text("A001")
    no_english_or_ids(pad)
    shot(pad, "evaluation_pad")
    pad.check("#levels input[value='1']")
    pad.check("#reasons input[value='attitude']")
    pad.fill("#reasons textarea", "态度生硬, 没有一次告知")
    pad.click("#rate")
    expect(pad.locator("#done")).to_contain_text("非常不满意")
    shot(pad, "evaluation_pad_done")

    # The supervisor rectifies and follows up; the window appeals; the region above upholds it.
    sup = signed_in(browser, hall, "赵督查", "/ui/hall/ratings")
    card = sup.locator("article[data-status=open]")
    expect(card).to_contain_text("服务态度差")
    expect(sup.locator("#summary-table tr[data-key=pd-zhengwu] .open")).to_have_text("1")
    rid = (card.get_attribute("id") or "")[1:]
    sup.fill(f"#rectify-{rid} textarea", "约谈窗口人员, 重申一次性告知")
    sup.click(f"#rectify-{rid} button")
    expect(sup.locator("#done")).to_have_text("整改已记录")
    sup.check(f"#visit-{rid} input[value=satisfied]")
    sup.fill(f"#visit-{rid} textarea", "电话回访, 申请人认可")
    sup.click(f"#visit-{rid} button")
    expect(sup.locator(f"#r{rid}")).to_contain_text("申请人满意")
    no_english_or_ids(sup)
    shot(sup, "hall_ratings_rectified")
    clerk.goto(f"{hall.url}/ui/hall/ratings")
    clerk.fill(f"#appeal-{rid} textarea", "评价人所述情况发生在其他窗口")
    clerk.click(f"#appeal-{rid} button")
    expect(clerk.locator(f"#status-{rid}")).to_contain_text("申诉复核中")
    city = signed_in(browser, hall, "孙市督查", "/ui/hall/ratings")
    city.check(f"#decide-{rid} input[value=yes]")
    city.fill(f"#decide-{rid} textarea", "经核实为误评")
    city.click(f"#decide-{rid} button")
    expect(city.locator(f"#status-{rid}")).to_contain_text("申诉成立")

    # The figures: the annulled rating counts for nothing; ticket → call and call → 收件 waits.
    sup.goto(f"{hall.url}/ui/hall/ratings")
    row = sup.locator("#summary-table tr[data-key=pd-zhengwu]")
    expect(row.locator(".bad")).to_have_text("0")
    expect(row.locator(".annulled")).to_have_text("1")
    waits = sup.locator("#waits-table tr[data-key=pd-zhengwu]")
    expect(waits.locator(".wait")).to_have_text("64.0")  # P001 3 minutes, A001 125
    expect(waits.locator(".intake")).to_have_text("7.0")  # P001's call → its 收件; A001 led to none
    no_english_or_ids(sup)
    shot(sup, "hall_ratings")
    with sup.expect_download() as got:
        sup.click("#export")
    csv = Path(got.value.path()).read_text(encoding="utf-8-sig")
    assert csv.splitlines()[0].startswith("办件编号,事项编码") and "非常不满意" in csv
    with hall.engine.connect() as conn:  # the booking's SMS and the 差评's mail were queued for delivery
        kinds = set(conn.execute(sa.text("SELECT kind FROM notifications")).scalars())
    assert {"appointment_booked", "bad_rating", "rectified"} <= kinds


def test_ticket_machine_groups_hours_capacity_and_returning(browser: Browser, hall: Hall) -> None:
    """济南's machine: the directory gives it hours, groups (A 企业服务, B 个人事务) and an item closing
    at 11:30; F5 on the number shows the same number, Back the item list, never a second number.
    复诊 with a case number and query code goes to the companion without queueing."""
    with hall.engine.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar_one()
    with clock.frozen(datetime(2026, 12, 8, 11, 40, tzinfo=ZoneInfo("Asia/Shanghai"))):  # Tuesday 11:40
        page = context(browser, DESKTOP).new_page()
        page.goto(f"{hall.url}/hall/ticket")
        page.select_option("#ticket-counter", "jn-kuayu")
        page.click("#ticket-next")
        expect(page.locator("#counter-hours")).to_contain_text("09:00-12:00、13:00-17:00")
        expect(page.locator("#groups")).to_contain_text("个人事务")
        no_english_or_ids(page)
        shot(page, "hall_ticket_groups")
        page.click("#group-B")
        expect(page.locator("#chosen-group")).to_contain_text("个人事务")
        expect(page.locator("#item-GJJZYJX")).to_be_disabled()  # its own hours end at 11:30
        expect(page.locator("#items")).to_contain_text("今日余 40 个号")
        no_english_or_ids(page)
        shot(page, "hall_ticket_items")
        page.click("#item-YDJYBA")
        expect(page.locator("#ticket-number")).to_have_text("B001")
        expect(page.locator("#ticket-wait")).to_contain_text("已等候 0 分钟")
        page.reload()  # F5: the same number, not a second one
        expect(page.locator("#ticket-number")).to_have_text("B001")
        page.go_back()
        expect(page.locator("#items")).to_contain_text("今日余 39 个号")
        with hall.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar_one() == before + 1

        # 复诊: a case taken in at 济南 by 王芳; a wrong code is refused on the page, nothing issued.
        clerk = signed_in(browser, hall, "王芳", "/ui/hall/call")
        clerk.goto(f"{hall.url}/ui/cases/new?item=GGCSWSXK")
        clerk.fill("input[name=name]", DEMO_APPLICANT["name"])
        clerk.fill("input[name=id_number]", DEMO_APPLICANT["id_number"])
        clerk.fill("input[name=address]", DEMO_APPLICANT["address"])
        for box in clerk.locator("input[name=materials]").all():
            box.check()
        clerk.click("button:has-text('确认收件')")
        number = clerk.locator("#number").inner_text()
        query_code = clerk.locator("#query-code").inner_text()
        page.goto(f"{hall.url}/hall/ticket")
        no_english_or_ids(page)
        shot(page, "hall_ticket_machine")
        page.fill("#returning-number", number)
        page.fill("#returning-code", "WRONG1234")
        page.click("#take-returning")
        expect(page.locator("#error")).to_contain_text("查询码")
        expect(page.locator("#returning-number")).to_have_value(number)
        page.fill("#returning-code", query_code)
        page.click("#take-returning")
        expect(page.locator("#ticket-number")).to_have_text("F001")
        expect(page.locator("#ticket-machine")).to_contain_text("复诊号")
        no_english_or_ids(page)
        shot(page, "hall_ticket_returning")
        page.reload()
        expect(page.locator("#ticket-number")).to_have_text("F001")
        clerk.goto(f"{hall.url}/ui/hall/call")
        clerk.click("#call-next")
        expect(clerk.locator("#called")).to_contain_text("F001")  # ahead of the walk-in B001
        # The clerk's own sign-in on the pad is told it needs the pad's account; nothing to rate.
        own = signed_in(browser, hall, "王芳", "/ui/hall/pad", TABLET)
        expect(own.locator("#error")).to_contain_text("窗口评价器账号")
        expect(own.locator("#pad-form")).to_have_count(0)
        no_english_or_ids(own)
