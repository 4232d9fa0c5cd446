"""The hall in headless Chromium, one walk against a real uvicorn server (demo seeded, SQLite of its
own, the clock frozen on a Monday morning in Beijing): an applicant books on a phone, a walk-in
takes a number at the ticket machine, the window checks the booking in, calls it before the
walk-in, and takes the application in at that window; the hall display shows the call; the
walk-in rates the visit 非常不满意 on the window's pad; the supervisor rectifies and follows up,
the window appeals, the supervisor of the region above upholds it, and the figures follow.
Then every hall form once more, each followed by F5, Back, Forward and the same form sent again:
only GETs after the form, no browser error page, no row written twice.

Screenshots of each page land in docs/screenshots/ (1366×768; the pad at a tablet's 1024×768,
the booking also at a phone's 390×844).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import DEMO_APPLICANT, answer_situations, chromium, serving
from playwright.sync_api import Browser, BrowserContext, Page, expect

from api.app import create_app
from core import clock
from core.settings import ROOT, get_settings
from engine import appointments
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


def take_in(clerk: Page, name: str, phone: str | None = None) -> tuple[str, str]:
    """收件 on the open intake form, every material received: the case number and query code shown."""
    clerk.fill("input[name=name]", name)
    if phone:
        clerk.fill("input[name=phone]", phone)
    clerk.fill("input[name=id_number]", DEMO_APPLICANT["id_number"])
    clerk.fill("input[name=address]", DEMO_APPLICANT["address"])
    for box in clerk.locator("input[name=materials]").all():
        box.check()
    answer_situations(clerk)
    clerk.click("button:has-text('确认收件')")
    return clerk.locator("#number").inner_text(), clerk.locator("#query-code").inner_text()


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
    number, query_code = take_in(clerk, "张三", "13800000021")
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
        number, query_code = take_in(clerk, DEMO_APPLICANT["name"])
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


# --- F5, Back and Forward after every hall form ---------------------------------------------------

# What a form wrote: a repeat (F5, Back, Forward, the same form sent again) must leave it as it is.
WRITTEN = {"tickets": "id, status, called_at, called_by", "appointments": "id, status",
           "evaluations": "id, level", "notifications": "id",
           "rectifications": "id, status, done_at, visit_at, appeal_at, appeal_decided_at"}
CAPTURE = """([form, submitter]) => {
  const f = document.querySelector(form);
  return {action: f.action, fields: [...new FormData(f, submitter ? document.querySelector(submitter) : null)]};
}"""
RESEND = """({action, fields}) => {
  const f = document.createElement("form");
  f.method = "post"; f.action = action;
  for (const [name, value] of fields) {
    const i = document.createElement("input");
    i.type = "hidden"; i.name = name; i.value = value; f.appendChild(i);
  }
  document.body.appendChild(f); f.submit();
}"""


def written(hall: Hall) -> dict[str, list[tuple[object, ...]]]:
    with hall.engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(sa.text(f"SELECT {cols} FROM {t} ORDER BY id"))]
                for t, cols in WRITTEN.items()}


def shown(page: Page, refusal: str | None = None) -> str:
    """The page in Chinese, no internal ids; the refusal ``refusal`` (a part of it) or no error.
    Returns the error the page shows ("" if none)."""
    alert = page.locator("[role=alert]")
    if refusal:
        expect(alert).to_contain_text(refusal)
    elif refusal is not None:
        expect(alert).to_have_count(0)
    no_english_or_ids(page)
    return alert.inner_text() if alert.count() else ""


def submit_and_walk(page: Page, hall: Hall, form: str, button: str, refusal: str | None = None) -> str:
    """Submit ``form`` with ``button`` (one POST, answered 303); then F5, Back and Forward send only
    GETs, show no browser error page and write nothing; then the very same form sent again (a page
    the browser kept, a double tap) lands on the first result and writes nothing. ``refusal``: the
    form is refused with that reason (nothing written, the reason shown at each visit of the
    result). Returns the result's URL."""
    sent = page.evaluate(CAPTURE, [form, button])
    assert any(name == "form_token" for name, _ in sent["fields"])
    methods: list[str] = []
    page.on("request", lambda r: methods.append(r.method))
    before, was = written(hall), shown(page)
    with page.expect_navigation():
        page.click(button)
    result, after = page.url, written(hall)
    assert methods.count("POST") == 1 and (after == before if refusal else after != before)
    shown(page, refusal or "")
    methods.clear()
    for step in (page.reload, page.go_back, page.go_forward, page.reload):
        answer = step()
        assert answer is None or answer.ok, (step.__name__, answer.status)
        if step == page.go_back:
            assert shown(page) == was  # the form's page as it was
        else:
            shown(page, refusal or "")
    assert page.url == result and set(methods) <= {"GET"}, methods
    assert written(hall) == after
    methods.clear()
    with page.expect_navigation():
        page.evaluate(RESEND, sent)
    assert page.url == result and methods.count("POST") == 1, (page.url, result, methods)
    shown(page, refusal or "")
    assert written(hall) == after
    return result


def test_f5_back_and_forward_after_every_hall_form_write_nothing_twice(browser: Browser, hall: Hall) -> None:
    """The ticket machine, the window's check-in and 叫下一位, the pad and the 整改 actions: each
    form acts once, whatever the browser does after it."""
    with clock.frozen(datetime(2026, 12, 9, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai"))):  # Wednesday
        with session_scope(hall.engine) as s:
            code = appointments.book(s, "pd-zhengwu", "GGCSWSXK", date(2026, 12, 9), "09:30", "李四",
                                     "13800000031")["code"]
        machine = context(browser, DESKTOP).new_page()
        machine.goto(f"{hall.url}/hall/ticket")
        machine.fill("#returning-number", "310115202612090000001")
        machine.fill("#returning-code", "WRONG1234")
        submit_and_walk(machine, hall, "#returning-form", "#take-returning", refusal="办件")
        expect(machine.locator("#returning-number")).to_have_value("310115202612090000001")
        machine.goto(f"{hall.url}/hall/ticket?counter=pd-zhengwu")
        submit_and_walk(machine, hall, "#ticket-form", "#item-GGCSWSXK")
        expect(machine.locator("#ticket-number")).to_have_text("A001")  # F5 or Back never took A002

        clerk = signed_in(browser, hall, "陈静", "/ui/hall/call")
        clerk.fill("#checkin-code", "NOSUCH0000")
        submit_and_walk(clerk, hall, "#checkin-form", "#checkin", refusal="预约")
        clerk.fill("#checkin-code", code)
        submit_and_walk(clerk, hall, "#checkin-form", "#checkin")
        expect(clerk.locator("#issued")).to_contain_text("P001")  # not "该预约已签到"
        submit_and_walk(clerk, hall, "#call-form", "#call-next")
        expect(clerk.locator("#called")).to_contain_text("P001")
        with hall.engine.connect() as conn:  # nobody skipped: the walk-in still waits its turn
            assert dict(conn.execute(sa.text("SELECT number, status FROM tickets WHERE day = '2026-12-09'")).all()) \
                == {"A001": "waiting", "P001": "called"}

        pad = signed_in(browser, hall, "浦东综合窗口评价器", "/ui/hall/pad", TABLET)
        expect(pad.locator("#pad")).to_contain_text("P001")
        assert not re.search(r"[A-Za-z]", pad.locator("form.who span").inner_text())  # the role in Chinese too
        pad.check("#levels input[value='2']")
        submit_and_walk(pad, hall, "#pad-form", "#rate", refusal="原因")  # 不满意 asks why
        pad.check("#levels input[value='2']")
        pad.check("#reasons input[value='attitude']")
        submit_and_walk(pad, hall, "#pad-form", "#rate")
        expect(pad.locator("#done")).to_contain_text("不满意")  # the thanks, not "已评价过"
        with hall.engine.connect() as conn:
            rid = conn.execute(sa.text("SELECT max(id) FROM rectifications")).scalar_one()
            assert conn.execute(sa.text("SELECT count(*) FROM evaluations WHERE ticket_id = "
                                        "(SELECT id FROM tickets WHERE day = '2026-12-09' AND number = 'P001')")
                                ).scalar_one() == 1

        sup = signed_in(browser, hall, "赵督查", "/ui/hall/ratings")
        sup.fill(f"#rectify-{rid} textarea", "窗口人员重新学习服务规范")
        submit_and_walk(sup, hall, f"#rectify-{rid}", f"#rectify-{rid} button")
        expect(sup.locator("#done")).to_have_text("整改已记录")
        sup.check(f"#visit-{rid} input[value=satisfied]")
        sup.fill(f"#visit-{rid} textarea", "电话回访")
        submit_and_walk(sup, hall, f"#visit-{rid}", f"#visit-{rid} button")
        expect(sup.locator(f"#r{rid}")).to_contain_text("申请人满意")
        clerk.goto(f"{hall.url}/ui/hall/ratings")
        clerk.fill(f"#appeal-{rid} textarea", "申请人所述为其他窗口")
        submit_and_walk(clerk, hall, f"#appeal-{rid}", f"#appeal-{rid} button")
        expect(clerk.locator(f"#status-{rid}")).to_contain_text("申诉复核中")
        city = signed_in(browser, hall, "孙市督查", "/ui/hall/ratings")
        city.check(f"#decide-{rid} input[value=no]")
        submit_and_walk(city, hall, f"#decide-{rid}", f"#decide-{rid} button")
        expect(city.locator(f"#status-{rid}")).not_to_contain_text("申诉复核中")
