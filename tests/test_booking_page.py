"""网上预约, the public booking page: the choices step by step (GET), the booking (POST → 303 → the
code, shown from a cookie, never in a URL), lookup, reschedule and cancel with the code, errors
named on the page and nothing written by them. The browser walk is in test_hall_browser."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import Demo

from core import clock
from core.settings import get_settings

MONDAY_EARLY = datetime(2026, 12, 7, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(autouse=True)
def _generous_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "progress_rate_per_minute", 1000)


def test_book_look_up_move_and_cancel_on_the_page(sqlite_demo: Demo) -> None:
    c = sqlite_demo.client
    with clock.frozen(MONDAY_EARLY):
        first = c.get("/booking")
        assert first.status_code == 200 and "公共场所卫生许可" in first.text and 'id="counter"' not in first.text
        step2 = c.get("/booking", params={"item": "GGCSWSXK"})
        assert "浦东新区" in step2.text and 'id="counter"' in step2.text and 'id="date"' not in step2.text
        step3 = c.get("/booking", params={"item": "GGCSWSXK", "counter": "pd-zhengwu"})
        assert "12月7日 星期一" in step3.text and "12月12日" not in step3.text  # Saturday: no counter opens
        step4 = c.get("/booking", params={"item": "GGCSWSXK", "counter": "pd-zhengwu", "date": "2026-12-07"})
        assert step4.status_code == 200 and 'value="09:30"' in step4.text and "余 2 个" in step4.text
        weekend = c.get("/booking", params={"item": "GGCSWSXK", "counter": "pd-zhengwu", "date": "2026-12-12"})
        assert weekend.status_code == 422 and "请选择列出的工作日" in weekend.text

        form = {"item": "GGCSWSXK", "counter": "pd-zhengwu", "date": "2026-12-07", "start": "09:30", "name": "张三"}
        bad_phone = c.post("/booking", data=form | {"phone": "0531-8888"})
        assert bad_phone.status_code == 422 and "11 位手机号码" in bad_phone.text and 'value="张三"' in bad_phone.text
        assert "phone:" not in bad_phone.text and "start:" not in weekend.text  # the reason, not the field's name
        assert sqlite_demo.count("appointments") == 0
        done = c.post("/booking", data=form | {"phone": "13800000011"}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/booking/done"
        page = c.get("/booking/done")
        code = re.search(r'id="code">([0-9A-Z]{10})<', page.text).group(1)
        assert "预约成功" in page.text and "09:30–10:00" in page.text and code not in str(page.url)
        assert sqlite_demo.count("notifications", kind="appointment_booked") == 1

        wrong = c.post("/booking/manage", data={"code": "ZZZZZZZZZZ"})
        assert wrong.status_code == 404 and "未找到该预约" in wrong.text
        found = c.post("/booking/manage", data={"code": code.lower()})
        assert found.status_code == 200 and "已预约" in found.text and 'id="new-date"' in found.text
        slots = c.post("/booking/manage", data={"code": code, "date": "2026-12-08"})
        assert 'id="reschedule-form"' in slots.text
        moved = c.post("/booking/reschedule", data={"code": code, "date": "2026-12-08", "start": "14:00"},
                       follow_redirects=False)
        assert moved.status_code == 303
        assert "12月8日 星期二 14:00–14:30" in c.get("/booking/done").text
        cancelled = c.post("/booking/cancel", data={"code": code}, follow_redirects=False)
        assert cancelled.status_code == 303 and "预约已取消" in c.get("/booking/done").text
        again = c.post("/booking/cancel", data={"code": code})
        assert again.status_code == 409 and "已取消" in again.text
    assert sqlite_demo.count("notifications") == 3  # booked, moved, cancelled: one SMS each
