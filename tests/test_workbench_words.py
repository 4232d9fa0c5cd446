"""Every page of a full walk through the workbench, read as a person reads it: no internal
identifier (event kinds, material, state and trigger ids, counter ids) and no English validation
text in what is shown — the text, and the titles, placeholders, labels and alt texts of elements.

The walk: 出版物零售许可 taken in at 济南 with a material missing (after a refused form), 补正 with
the checklist, 受理, a claim, 审核, 退回 and again, 延期, 审批 with the certificate's data, the
notices and the certificate drawn, 出证 with a waybill, 送达; a second case 撤回; the queue's tabs,
search and filters, a stale form, a page that does not exist, the supervisor's views. Clerks hold
one role each where the walk gives the role a step."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from conftest import CERT_VALUES, Demo, page_login, situation_form
from fastapi.testclient import TestClient

from engine import catalog, labels
from engine.actors import add_clerk
from storage.db import session_scope
from storage.tables import Counter

ITEM = "CBWLSXK"
# ASCII words a page may show: the brand, file formats, the query code's letters are in a <strong>
# of their own (checked apart).
ALLOWED = {"Tongban", "PDF", "PNG", "JPEG", "TIFF", "SVG", "CSRF", "X"}


class _Visible(HTMLParser):
    """The text a person reads: character data outside script and style, and the attributes
    that are read out or shown (title, placeholder, aria-label, alt)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.parts += [v for k, v in attrs if k in ("title", "placeholder", "aria-label", "alt") and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    html = re.sub(r'<strong id="query-code"[^>]*>[^<]*</strong>', "", html)  # the query code: letters by design
    p = _Visible()
    p.feed(html)
    return " ".join(" ".join(p.parts).split())


def identifiers(demo: Demo) -> set[str]:
    """Every name the product uses internally that a page might leak."""
    names = set(labels.EVENT_LABELS) | {"transition", "intake", "material"}
    with session_scope(demo.engine) as s:
        for it in catalog.list_items(s):
            d = catalog.compiled(s, catalog.latest_version(s, it["code"]).id).definition
            names |= {x.id for x in d.states} | {m.id for m in d.materials} | {t.trigger for t in d.transitions}
        names |= set(s.execute(sa.select(Counter.id)).scalars())
    return names


ENGLISH = re.compile(r"should|required|pattern|Field|Input|String|value_error|Traceback|None|null|\{|\}|\[0-9")


class Walk:
    def __init__(self, demo: Demo, clients: dict[str, TestClient]) -> None:
        self.demo, self.clients, self.pages = demo, clients, []

    def get(self, who: str, url: str, expect: int = 200) -> str:
        r = self.clients[who].get(url)
        assert r.status_code == expect, (url, r.status_code, r.text[-500:])
        self.pages.append((f"{who} GET {url}", r.text))
        return r.text

    def post(self, who: str, page: str, action: str, expect: int = 303, **data: object) -> str:
        start = page.index(f'method="post" action="{action}"')
        chunk = page[start:page.index("</form>", start)]
        hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', chunk))
        lists = {k: re.findall(rf'<input type="hidden" name="{k}" value="([^"]*)"', chunk) for k in ("material",)}
        body = {**hidden, **{k: v for k, v in lists.items() if v}, **data}
        r = self.clients[who].post(action, data=body, follow_redirects=False)
        assert r.status_code == expect, (action, r.status_code, r.text[-800:])
        if r.status_code == 303:
            return self.get(who, r.headers["location"])
        self.pages.append((f"{who} POST {action}", r.text))
        return r.text


@pytest.fixture
def walk(sqlite_demo: Demo) -> Walk:
    demo = sqlite_demo  # what pages say does not depend on the database: one run
    with session_scope(demo.engine) as s:
        extra = {name: add_clerk(s, name, "jn-kuayu", [role], 1)[1]
                 for name, role in (("许审核", "reviewer"), ("彭审批", "approver"))}
    demo.tokens.update(extra)
    clients = {}
    for who in ("王芳", "许审核", "彭审批", "赵督查"):
        c = TestClient(demo.client.app, headers={"Origin": "http://testserver", "Accept": "text/html,*/*;q=0.8"})
        assert page_login(c, demo.tokens[who], "/ui/designer").status_code == 303
        clients[who] = c
    return Walk(demo, clients)


def test_no_page_of_a_full_walk_shows_an_internal_identifier(walk: Walk) -> None:
    w = walk
    w.get("王芳", "/ui/queue")
    form = w.get("王芳", f"/ui/cases/new?item={ITEM}")
    applicant = {"item": ITEM, "name": "济南某某书店", "kind": "company", "id_number": "91370100MA3C4K2L43",
                 "phone": "0531-88880000", "address": "山东省济南市历下区泉城路 1 号", "agent_name": "张某",
                 "agent_id_number": "11010519491231002X", "materials": ["application", "operator_id"],
                 "situation": situation_form(ITEM, ["application", "operator_id"])}
    w.post("王芳", form, "/ui/cases/new", expect=422, **{**applicant, "id_number": "bad number!", "phone": "x"})
    form = w.get("王芳", f"/ui/cases/new?item={ITEM}")
    done = w.post("王芳", form, "/ui/cases/new", **applicant)
    number = re.search(r'id="number">([^<]+)<', done).group(1)  # type: ignore[union-attr]
    url = f"/ui/cases/{number}"
    page = w.get("王芳", url)
    # 补正 with the checklist: the missing 经营场所使用权证明 ticked, with its reason.
    page = w.post("王芳", page, f"{url}/triggers/request_supplement", tick=["premises_proof"],
                  reason=["", "未提交", ""], comment="请补交经营场所使用权证明")
    assert "补齐补正" in page
    w.get("王芳", "/ui/queue")
    page = w.post("王芳", page, f"{url}/materials/premises_proof", status="received")
    page = w.post("王芳", page, f"{url}/triggers/supplement_done")
    stale = page
    page = w.post("王芳", page, f"{url}/triggers/accept")
    # The stale form sent again as a new one: refused, in words.
    w.post("王芳", stale, f"{url}/triggers/accept", expect=412, form_token="f" * 24)
    page = w.get("许审核", url)
    page = w.post("许审核", page, f"{url}/claim")
    page = w.post("许审核", page, f"{url}/triggers/start_review")
    page = w.get("彭审批", url)
    page = w.post("彭审批", page, f"{url}/send-back", target="back_to_accepted", comment="审核意见不完整")
    page = w.post("许审核", w.get("许审核", url), f"{url}/triggers/start_review")
    page = w.get("彭审批", url)
    page = w.post("彭审批", page, f"{url}/extension", reason="需要补充核查经营场所")
    cert = re.findall(r'data-cert="([a-z_]+)"', page)
    page = w.post("彭审批", page, f"{url}/triggers/approve", cert_id=cert, cert_value=[CERT_VALUES[c] for c in cert])
    # The notices and the certificate are numbered in the step's transaction; drawing them (the
    # jobs, seconds of PDF signing) adds no words to the pages, so the approver issues by hand here.
    page = w.post("彭审批", page, f"{url}/triggers/issue")
    assert "准予许可决定书" in page and "送达办结" in page
    page = w.post("王芳", w.get("王芳", url), f"{url}/triggers/deliver")
    # A second case, 撤回 by the companion.
    form = w.get("王芳", f"/ui/cases/new?item={ITEM}")
    done = w.post("王芳", form, "/ui/cases/new", **applicant)
    second = re.search(r'id="number">([^<]+)<', done).group(1)  # type: ignore[union-attr]
    w.post("王芳", w.get("王芳", f"/ui/cases/{second}"), f"/ui/cases/{second}/triggers/withdraw", comment="申请人撤回")
    for q in ("?tab=finished", "?q=%E4%B9%A6%E5%BA%97", "?q=88880000&tab=finished", "?sort=due&desc=true",
              f"?item={ITEM}&state=received", "?deadline=逾期", "?claim=unclaimed"):
        w.get("王芳", "/ui/queue" + q)
    w.get("王芳", f"/ui/queue?item={ITEM}&state=nosuch", expect=422)
    w.get("王芳", "/ui/queue?tab=nosuch", expect=422)
    w.get("王芳", "/ui/cases/3701009999", expect=404)
    w.get("王芳", "/ui/no-such-page", expect=404)
    w.get("赵督查", url)
    w.get("赵督查", "/ui/queue?counter=jn-kuayu")
    names = identifiers(w.demo)
    leaks = []
    for where, html in w.pages:
        text = visible(html)
        words = set(re.findall(r"[A-Za-z][A-Za-z0-9_\-]*[A-Za-z0-9]|[A-Za-z]", text))
        words -= set(re.findall(r"=([A-Za-z]+)", where))  # what the clerk typed, said back
        found = sorted((words & names) | {x for x in words if ("_" in x or "-" in x)}
                       | {x for x in words - ALLOWED if len(x) > 1 and x.isascii() and not x.isupper()})
        if ENGLISH.search(text):
            found.append(ENGLISH.search(text).group(0))  # type: ignore[union-attr]
        if found:
            leaks.append(f"{where}: {found}")
    assert not leaks, "\n".join(leaks)
    assert len(w.pages) > 40
