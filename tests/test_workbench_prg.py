"""The workbench's forms without a browser: post/redirect/get with one-time form tokens (F5 or
Back and submit after a POST creates nothing), and validation messages in Chinese."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from conftest import ALL_FGS, Demo, page_login, situation_form
from fastapi.testclient import TestClient

from engine import labels


def _login(demo: Demo, who: str) -> TestClient:
    client = TestClient(demo.client.app, headers={"Origin": "http://testserver"})
    assert page_login(client, demo.tokens[who], "/ui/designer").status_code == 303
    return client


def _form(html: str, action: str) -> dict[str, str]:
    """The hidden fields (csrf, form token, version) of the form posting to ``action``."""
    start = html.index(f'method="post" action="{action}"')
    chunk = html[start:html.index("</form>", start)]
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', chunk))


def test_intake_redirects_and_a_repeated_submission_shows_the_first_case(demo: Demo) -> None:
    wang = _login(demo, "王芳")
    hidden = _form(wang.get("/ui/cases/new?item=FGSFZRBG").text, "/ui/cases/new")
    assert hidden["form_token"] and hidden["csrf"]
    data = {**hidden, "name": "青岛某某贸易有限公司", "kind": "company", "materials": list(ALL_FGS),
            "situation": situation_form("FGSFZRBG", ALL_FGS)}
    r = wang.post("/ui/cases/new", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/cases/new/done/")
    done = wang.get(r.headers["location"])
    number = re.search(r'id="number">([^<]+)<', done.text).group(1)  # type: ignore[union-attr]
    code = re.search(r'id="query-code" class="code">([^<]+)<', done.text).group(1)  # type: ignore[union-attr]
    assert demo.count("cases") == 1
    # F5 on the result page (a GET) and the same form sent again (Back, submit): still one case,
    # and the repeat is shown the first result with its query code.
    assert wang.get(r.headers["location"]).text == done.text
    again = wang.post("/ui/cases/new", data=data, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == r.headers["location"]
    assert demo.count("cases") == 1
    assert code in wang.get(again.headers["location"]).text and number
    # Another clerk cannot open this clerk's result.
    assert _login(demo, "李强").get(r.headers["location"]).status_code == 404
    # A fresh form is a new intake.
    fresh = {**data, **_form(wang.get("/ui/cases/new?item=FGSFZRBG").text, "/ui/cases/new")}
    assert wang.post("/ui/cases/new", data=fresh, follow_redirects=False).status_code == 303
    assert demo.count("cases") == 2


def test_a_case_action_sent_twice_acts_once(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    wang = _login(demo, "王芳")
    url = f"/ui/cases/{case['number']}/extension"
    page = wang.get(f"/ui/cases/{case['number']}").text
    if f'action="{url}"' not in page:  # the clerk has no 延期 here; the trigger form stands in
        url = next(a for a in re.findall(r'action="([^"]+/triggers/[^"]+)"', page))
    data = {**_form(page, url), "reason": "需要补充核查", "comment": "已核对"}
    before = demo.client.get(f"/api/v1/cases/{case['number']}/history", headers=demo.h("王芳")).json()
    first = wang.post(url, data=data, follow_redirects=False)
    assert first.status_code == 303
    again = wang.post(url, data=data, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    after = demo.client.get(f"/api/v1/cases/{case['number']}/history", headers=demo.h("王芳")).json()
    assert len(after["items"]) == len(before["items"]) + 1


def test_validation_errors_are_chinese_sentences_naming_the_field(demo: Demo) -> None:
    wang = _login(demo, "王芳")
    hidden = _form(wang.get("/ui/cases/new?item=FGSFZRBG").text, "/ui/cases/new")
    r = wang.post("/ui/cases/new", data={**hidden, "name": "某公司", "id_number": "有空格 x", "phone": "abc"})
    assert r.status_code == 422
    assert "证件号码" in r.text and "须为 6 至 32 位数字或字母" in r.text and "联系电话" in r.text
    assert "<small>jn-" not in r.text and "<small>qd-" not in r.text  # the counter by its name
    shown = r.text[r.text.index('<ul class="error"'):]
    shown = shown[:shown.index("</ul>")]
    for leaked in ("String should", "pattern", "applicant.", "[0-9", "id_number", "<code>"):
        assert leaked not in shown, leaked
    assert demo.count("cases") == 0
    assert labels.validation_sentences([{"type": "missing", "loc": ("applicant", "name")}]) == \
        [{"field": "名称/姓名", "reason": "为必填项"}]


def test_an_intake_form_sent_several_times_at_once_takes_one_case(demo: Demo, serve_app: Any) -> None:
    """A double tap on 收件 (the same form at the same moment, each past the token check before
    the first commits): one case; every answer the same 303 to it, none an error."""
    url = serve_app(demo.client.app)
    with httpx.Client(base_url=url, headers={"Origin": url}) as wang:
        assert page_login(wang, demo.tokens["王芳"], "/ui/").status_code == 303
        hidden = _form(wang.get("/ui/cases/new?item=FGSFZRBG").text, "/ui/cases/new")
        data = {**hidden, "name": "青岛某某贸易有限公司", "kind": "company", "materials": list(ALL_FGS),
            "situation": situation_form("FGSFZRBG", ALL_FGS)}
        cookies = dict(wang.cookies)
    start = threading.Barrier(4)

    def tap() -> httpx.Response:
        start.wait()
        return httpx.post(f"{url}/ui/cases/new", data=data, cookies=cookies, headers={"Origin": url}, timeout=30)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: tap(), range(4)))
    assert [a.status_code for a in answers] == [303] * 4, [a.text[:300] for a in answers if a.status_code != 303]
    assert len({a.headers["location"] for a in answers}) == 1
    assert demo.count("cases") == 1
