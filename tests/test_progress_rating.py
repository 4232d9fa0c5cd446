"""一事一评 from the 收件凭证 to the progress page: the receipt's QR code points at the progress page
with the case number (never the query code); at 办结 the page offers the rating, takes it once
with the query code (303, F5 repeats nothing), and a 差评 opens its rectification and the
supervisors' mail."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo

from core import clock
from core.settings import get_settings
from engine.pdf import notice_layout
from engine.pdf_notice import draw_notice
from storage.object_factory import get_store
from storage.tables import T_CASE


@pytest.fixture(autouse=True)
def _setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    s = get_settings()
    monkeypatch.setattr(s, "progress_rate_per_minute", 1000)
    monkeypatch.setattr(s, "object_dir", tmp_path / "objects")
    monkeypatch.setattr(s, "public_base_url", "https://tongban.example.cn")
    get_store.cache_clear()
    yield
    get_store.cache_clear()


def test_the_receipts_qr_leads_to_the_progress_page_where_the_finished_case_is_rated_once(
        sqlite_demo: Demo, tmp_path: Path) -> None:
    demo, c = sqlite_demo, sqlite_demo.client
    case = demo.create("陈静", "GGCSWSXK", ALL_GGCS)
    n, code = case["number"], case["query_code"]
    with demo.engine.connect() as conn:  # the facts are fixed at 收件; drawing them is the job's
        facts = conn.execute(sa.text("SELECT d.data FROM case_documents d JOIN cases c ON c.id = d.case_id "
                                     "WHERE c.number = :n AND d.kind = 'receipt'"), {"n": n}).scalar_one()
    facts = facts if isinstance(facts, dict) else json.loads(facts)
    layout = notice_layout("receipt", "GGCSWSXK", facts)
    (qr,) = layout.iter("qr")
    assert qr.get("url") == f"https://tongban.example.cn/progress?number={n}" and code not in qr.get("url")
    pdf = tmp_path / "receipt.pdf"
    pdf.write_bytes(draw_notice(layout, "收件凭证", "页脚"))  # in-process: the worker pool is not the subject
    text = "".join(subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True,
                                  text=True).stdout.split())
    assert "扫码查询进度" in text and "一事一评" in text
    pages = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+1$", pages, re.M)  # the QR code sits beside the text: still one page

    landing = c.get(qr.get("url").removeprefix("https://tongban.example.cn"))
    assert landing.status_code == 200 and f'value="{n}"' in landing.text
    open_case = c.post("/progress", data={"number": n, "code": code})
    assert open_case.status_code == 200 and 'id="rate-form"' not in open_case.text  # not 办结 yet
    with demo.engine.begin() as conn:  # 办结 is the lifecycle's (tested there); here only its mark counts
        conn.execute(sa.update(T_CASE).where(T_CASE.c.number == n).values(finished_at=clock.now()))
    page = c.post("/progress", data={"number": n, "code": code})
    assert 'id="rate-form"' in page.text and "非常不满意" in page.text and "服务态度差" in page.text
    no_reason = c.post("/progress/rate", data={"number": n, "code": code, "level": "2"})
    assert no_reason.status_code == 422 and "原因" in no_reason.text
    wrong = c.post("/progress/rate", data={"number": n, "code": "WRONG12345", "level": "5"})
    assert wrong.status_code == 404
    assert demo.count("evaluations") == 0
    rated = c.post("/progress/rate", data={"number": n, "code": code, "level": "2", "reasons": ["slow", "unclear"],
                                           "text": "等了两周"}, follow_redirects=False)
    assert rated.status_code == 303 and code not in rated.headers["location"]
    thanks = c.get(rated.headers["location"])
    assert "感谢您的评价: 不满意" in thanks.text
    again = c.post("/progress/rate", data={"number": n, "code": code, "level": "5"})
    assert again.status_code == 409
    shown = c.post("/progress", data={"number": n, "code": code})
    assert 'id="rated"' in shown.text and "不满意" in shown.text and 'id="rate-form"' not in shown.text
    assert demo.count("evaluations") == 1 and demo.count("rectifications") == 1
    assert demo.count("notifications", kind="bad_rating") == 1
