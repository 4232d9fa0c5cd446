"""The forms beside the walk, in headless Chromium as people use them: the applicant's progress
query refused, the applicant's booking (book, look up, move, cancel), a clerk's 现在出具并打印 of a
notice, and the queue's column headers.

After every form, F5, Back and Forward send GETs only and write nothing: each POST is answered
with a 303 (a refusal too, saying why once). The form sent again with the fields it carried —
what Back to a page the browser kept as it was, and a second press, send — acts once and shows
the first result, with no error. Every page shown is read for internal identifiers like the
walk's (tests/test_walk_browser.py, whose server and walker these tests share).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect
from test_walk_browser import (  # noqa: F401  (fixtures)
    DESKTOP,
    Server,
    Walker,
    book_on_the_page,
    browser,
    leaks,
    sent,
    server,
    shot,
)
from test_workbench_words import identifiers

from core.settings import get_settings
from engine import catalog
from engine.query_guard import WRONG
from storage.db import session_scope

pytestmark = [pytest.mark.browser, pytest.mark.netns]

RESEND = """([action, fields]) => { const f = document.createElement('form');
  f.method = 'post'; f.action = action;
  for (const [k, v] of Object.entries(fields)) {
    const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.append(i); }
  document.body.append(f); f.submit(); }"""


@pytest.fixture(autouse=True)
def _generous_budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Every page here comes from 127.0.0.1: the per-client budget is not what these tests are about.
    monkeypatch.setattr(get_settings(), "progress_rate_per_minute", 10_000)
    yield


def fields_of(page: Page, form: str) -> dict[str, str]:
    return page.eval_on_selector(form, "f => Object.fromEntries(new FormData(f))")


def resend(page: Page, action: str, fields: dict[str, str]) -> list[str]:
    """The form sent again with the fields it carried; the methods of the navigations it made."""
    with sent(page) as methods, page.expect_navigation():
        page.evaluate(RESEND, [action, fields])
    return methods


def post(page: Page, button: str) -> list[str]:
    with sent(page) as methods, page.expect_navigation():
        page.click(button)
    return methods


def replay(page: Page, writes: Callable[[], Any], check: Callable[[], None]) -> None:
    """F5, Back and Forward after a form: GETs only, nothing written, the result shown again."""
    landed, before = page.url, writes()
    with sent(page) as methods:
        page.reload()
        check()
        page.go_back()
        page.go_forward()
        expect(page).to_have_url(landed)
        check()
    assert set(methods) <= {"GET"}, f"F5/Back/Forward on {landed} sent {methods}"
    assert writes() == before, f"F5/Back/Forward on {landed} wrote something"


def first_item(at: Server) -> str:
    with session_scope(at.engine, readonly=True) as s:
        return catalog.list_items(s)[0]["code"]


def test_a_wrong_query_code_is_answered_by_a_redirect(browser: Browser, server: Server) -> None:  # noqa: F811
    """A wrong code on /progress: 303 back to the case number's form, why shown once; F5 there
    re-posts nothing, so the case's budget of wrong codes is charged once."""
    walker = Walker(browser, server)
    number, query, _ = walker.intake(first_item(server), name="查询码示范有限公司")
    page = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    page.set_default_timeout(15_000)
    walker.goto(page, "/progress")

    def failures() -> int:
        return server.count(f"SELECT coalesce(sum(failures), 0) FROM query_guards g JOIN cases c ON c.id = g.case_id"
                            f" WHERE c.number = '{number}'")

    def writes() -> tuple[Any, ...]:
        return (*server.counts(), failures())

    before = server.counts()
    page.fill("#progress-form input[name=number]", number)
    page.fill("#progress-form input[name=code]", "ZZZZZZZZ")
    assert post(page, "#progress-form button[type=submit]") == ["POST", "GET"]
    walker.read(page, "POST")
    shown = f"{server.url}/progress?number={number}"
    expect(page).to_have_url(shown)
    expect(page.locator("#error")).to_have_text(WRONG)
    expect(page.locator("#result")).to_have_count(0)
    assert failures() == 1

    def check() -> None:  # the form again, the number kept; why was said once
        expect(page.locator("#error")).to_have_count(0)
        expect(page.locator("#progress-form input[name=number]")).to_have_value(number)

    replay(page, writes, check)
    assert failures() == 1 and server.counts() == before
    # The right code then: the case, and F5 looks it up again (a GET) without the old refusal.
    page.fill("#progress-form input[name=code]", query)
    assert post(page, "#progress-form button[type=submit]") == ["POST", "GET"]
    expect(page.locator("#result")).to_contain_text(number)
    replay(page, writes, lambda: expect(page.locator("#result")).to_contain_text(number))
    assert failures() == 1
    found = leaks(walker.pages, identifiers(server))  # type: ignore[arg-type]
    assert not found, "\n".join(found)


def test_a_booking_is_made_moved_and_cancelled_once(browser: Browser, server: Server) -> None:  # noqa: F811
    """网上预约: 确认预约, the lookup by 预约码 (a wrong one and the right one), 确认改约 and 取消该预约,
    each a POST answered with a 303; F5, Back and Forward after each, and each form sent again,
    book, move and cancel nothing twice and show the first result."""
    walker = Walker(browser, server)
    page = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    page.set_default_timeout(15_000)
    phone = "13800000041"

    def booking() -> tuple[Any, ...]:
        with server.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT code, slot_id, status FROM appointments WHERE phone = :p"),
                                {"p": phone}).all()
            told = conn.execute(sa.text("SELECT count(*) FROM notifications WHERE kind LIKE 'appointment%'")
                                ).scalar_one()
        return tuple(map(tuple, rows)), told

    booked = book_on_the_page(walker, page, "王小明", phone)
    assert booked.get("form_token")
    assert post(page, "#book") == ["POST", "GET"]
    walker.read(page, "POST 确认预约 →")
    expect(page).to_have_url(f"{server.url}/booking/done")
    code = page.locator("#code").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{10}", code) and code not in page.url
    done = booking()
    assert len(done[0]) == 1

    def shows(status: str) -> Callable[[], None]:
        def check() -> None:
            expect(page.locator("#code")).to_have_text(code)
            expect(page.locator("#status")).to_have_text(status)
            expect(page.locator("#error")).to_have_count(0)
        return check

    replay(page, booking, shows("已预约"))
    assert resend(page, "/booking", booked) == ["POST", "GET"]
    expect(page).to_have_url(f"{server.url}/booking/done")
    shows("已预约")()
    assert booking() == done, "the booking form sent again booked again"

    # The lookup: a wrong code says why once, on the form; the right one shows the booking.
    walker.goto(page, "/booking/manage")
    page.fill("#code-input", "ZZZZZZZZZZ")
    assert post(page, "#lookup-form button[type=submit]") == ["POST", "GET"]
    walker.read(page, "POST 查询预约 →")
    expect(page).to_have_url(f"{server.url}/booking/manage")
    expect(page.locator("#error")).to_contain_text("未找到该预约")
    replay(page, booking, lambda: expect(page.locator("#error")).to_have_count(0))
    page.fill("#code-input", code.lower())
    assert post(page, "#lookup-form button[type=submit]") == ["POST", "GET"]
    walker.read(page, "POST 查询预约 →")
    expect(page).to_have_url(f"{server.url}/booking/mine")
    replay(page, booking, shows("已预约"))

    # 改约: another day's first open slot.
    page.select_option("#new-date", index=1)
    with page.expect_navigation():
        page.click("#show-slots")
    walker.read(page, "GET")
    when = page.locator("#when").inner_text()
    page.locator("#new-slots label:has(input:not([disabled]))").first.click()
    moved = fields_of(page, "#reschedule-form")
    assert post(page, "#move") == ["POST", "GET"]
    walker.read(page, "POST 确认改约 →")
    expect(page).to_have_url(f"{server.url}/booking/done")
    expect(page.locator("#when")).not_to_have_text(when)
    when, after_move = page.locator("#when").inner_text(), booking()
    assert after_move[0] != done[0] and after_move[1] == done[1] + 1
    replay(page, booking, shows("已预约"))
    assert resend(page, "/booking/reschedule", moved) == ["POST", "GET"]
    shows("已预约")()
    expect(page.locator("#when")).to_have_text(when)
    assert booking() == after_move, "the move sent again moved or told again"

    # 取消: once.
    walker.goto(page, "/booking/mine")
    cancel = fields_of(page, "#cancel-form")
    assert post(page, "#cancel-button") == ["POST", "GET"]
    walker.read(page, "POST 取消预约 →")
    expect(page).to_have_url(f"{server.url}/booking/done")
    cancelled = booking()
    assert cancelled[0][0][2] == "cancelled" and cancelled[1] == after_move[1] + 1
    replay(page, booking, shows("已取消"))
    assert resend(page, "/booking/cancel", cancel) == ["POST", "GET"]
    shows("已取消")()
    assert booking() == cancelled
    found = leaks(walker.pages, identifiers(server))  # type: ignore[arg-type]
    assert not found, "\n".join(found)


def test_a_notice_drawn_now_is_drawn_once(browser: Browser, server: Server) -> None:  # noqa: F811
    """现在出具并打印 of a 收件凭证 still waiting for the case to leave intake: one drawing job,
    whatever F5, Back, Forward and the form sent again do after it."""
    walker = Walker(browser, server)
    number, _, clerk = walker.intake(first_item(server), name="出具示范有限公司")
    url = f"/ui/cases/{number}/print/receipt"
    walker.goto(clerk, url)

    def drawings() -> tuple[int, ...]:
        return (*server.counts(), server.count(
            "SELECT count(*) FROM outbox o JOIN cases c ON c.id = o.case_id"
            f" WHERE c.number = '{number}' AND o.job = 'render_document'"))

    form = "form[action$='/print/receipt']"
    drawn = fields_of(clerk, form)
    assert drawn.get("form_token") and drawings()[-1] == 0
    assert post(clerk, f"{form} button[type=submit]") == ["POST", "GET"]
    walker.read(clerk, "POST 现在出具 →")
    expect(clerk).to_have_url(server.url + url)
    expect(clerk.locator("main")).to_contain_text("文书正在制作")
    assert drawings()[-1] == 1

    def check() -> None:
        expect(clerk.locator("main")).to_contain_text("文书正在制作")
        expect(clerk.locator(form)).to_have_count(0)

    replay(clerk, drawings, check)
    after = drawings()
    assert resend(clerk, url, drawn) == ["POST", "GET"]
    expect(clerk).to_have_url(server.url + url)
    expect(clerk.locator(".error, #error")).to_have_count(0)
    assert drawings() == after, "the form sent again drew again"
    found = leaks(walker.pages, identifiers(server))  # type: ignore[arg-type]
    assert not found, "\n".join(found)


def test_the_queue_headers_say_how_each_list_is_sorted(browser: Browser, server: Server) -> None:  # noqa: F811
    """待办 sorts by the header clicked (the arrow on that one); 已办结 lists the latest finished
    first, so only 办结时间 carries an arrow and no header offers a sort; a search ranks by match,
    so none does, and a list of open and finished cases heads its time column for both."""
    walker = Walker(browser, server)
    code = first_item(server)
    finished = walker.withdraw(code)
    number, _, page = walker.intake(code, name="表头示范有限公司")
    walker.goto(page, "/ui/queue")
    head = page.locator("#queue thead")
    expect(head.locator("th[aria-sort=ascending]")).to_have_text("收件时间 ▲")
    expect(head.locator("a[data-sort=due]")).to_have_text("期限")
    walker.goto(page, "/ui/queue?sort=due&desc=true")
    expect(head.locator("th[aria-sort=descending]")).to_have_text("期限 ▼")
    expect(head).not_to_contain_text("▲")

    walker.goto(page, "/ui/queue?tab=finished")
    expect(page.locator(f"tr[data-number='{finished}']")).to_be_visible()
    expect(head.locator("a")).to_have_count(0)
    expect(head.locator("th[aria-sort=descending]")).to_have_text("办结时间 ▼")
    expect(head.locator("th[aria-sort=ascending], th:has-text('▲')")).to_have_count(0)
    expect(head).not_to_contain_text("认领")
    times = page.locator("#queue tbody td.finished").all_inner_texts()
    assert times and times == sorted(times, reverse=True), times
    shot(page, "queue_finished_headers")

    walker.goto(page, "/ui/queue?q=" + quote("示范有限公司"))
    expect(page.locator(f"tr[data-number='{finished}']")).to_be_visible()
    expect(page.locator(f"tr[data-number='{number}']")).to_be_visible()
    expect(head.locator("a")).to_have_count(0)
    expect(head).not_to_contain_text("▲")
    expect(head).to_contain_text("期限 / 办结时间")
    expect(page.locator(f"tr[data-number='{finished}'] td.finished")).to_contain_text("办结")
    expect(page.locator(f"tr[data-number='{number}'] td.due")).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2}"))
    expect(page.locator(f"tr[data-number='{number}'] td.due")).not_to_contain_text("办结")
    shot(page, "queue_search")
    found = leaks(walker.pages, identifiers(server))  # type: ignore[arg-type]
    assert not found, "\n".join(found)
