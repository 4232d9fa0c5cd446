"""The notices on the case page in headless Chromium: the 文书 list, a print link that opens the
PDF, and the page printed on paper without its controls (the print stylesheet)."""

from __future__ import annotations

import pytest
from conftest import ALL_GGCS, run_jobs
from playwright.sync_api import Page, expect
from test_pages_browser import Server, browser, login, page, server, shot  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.netns]


def test_the_case_page_lists_prints_and_prints_itself(page: Page, server: Server) -> None:  # noqa: F811
    n = server.create("王芳", "GGCSWSXK", ALL_GGCS)["number"]
    run_jobs(server.engine)
    login(page, server, "王芳", f"/ui/cases/{n}")
    row = page.locator("#documents tr[data-kind=receipt]")
    expect(row).to_contain_text("收件凭证")
    expect(row.locator(".doc-number")).to_contain_text("济审收〔")
    # Still at intake: the 收件凭证 waits for the scans; the clerk draws it now, on purpose.
    row.locator("a[data-print=receipt]").click()
    shot(page, "receipt_draw_now")
    page.get_by_role("button", name="现在出具并打印").click()
    expect(page.get_by_role("status")).to_contain_text("正在制作")
    run_jobs(server.engine)
    page.goto(f"{server.url}/ui/cases/{n}")
    with page.context.expect_page() as opened:
        row.locator("a[data-print=receipt]").click()
    pdf = opened.value
    pdf.wait_for_load_state()
    assert pdf.url.split("?")[0].rsplit("/", 2)[-2] == "evidence"
    page.emulate_media(media="print")
    expect(page.locator("#actions")).to_be_hidden()
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.locator("#documents")).to_be_visible()
    expect(page.locator("#documents th.no-print")).to_be_hidden()
    shot(page, "case_print")
