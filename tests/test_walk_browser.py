"""Every demo item walked in headless Chromium, in the pages only, by clerks who hold one role each
(the workbench's promise): intake → every step → delivery, driven by each item's own definition, so that an item
added to catalog/items is walked without new test code.

The walker reads the case's state and the item's law from the database to decide who acts next
and which button that clerk presses; everything that changes the case is a click on a page (the
system's own steps — certificates, waybills, 网络自动审批, the join of parallel branches — run as
the outbox's jobs between clicks, as they would in production). After every POST, F5, Back and
Forward write nothing (cases, history and outbox counted before and after) and send nothing but
GETs (the browser never sends a form again). The video room's page joins the call on every load:
there F5 is a new join of the same room (no second room, no second opening, the clerk in the room
once), and Back and Forward leave and join it.

What is walked: the main path (the shortest to a final state that is not a refusal) of every item;
撤回 of a case of every item (and the form sent again from the page Back shows: the first result,
nothing withdrawn twice); the special branches once each, on the first item whose definition has
them: 补正 with the per-material checklist, the remote inspection in the video room (its
checklist), 延期, 退回 to the step before, and a claim. Every path of every item does not fit the
suite's three minutes on a loaded 2-core machine (tests/test_every_path.py walks those through
the API). Beside the walk: the withdrawn state's pill (its own look, on the case page, the
finished queue and the search list) and the applicant's progress query by post/redirect/get.

Every page the walk shows, and the words drawn in each case's diagram, is read for internal
identifiers (test_workbench_words' rules). Beside
the walk: intake by keyboard alone at 1366×768, and the applicant's pages on a phone (390×844,
touch): nothing wider than the screen, every control within reach.

Screenshots at 1366×768 go to docs/screenshots/walk_*: what the screen shows (the intake forms
from top to bottom), each item's form and its case at the end, and the special branches' pages;
walk_phone_* at 390×844.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import CAMERA_ARGS, CERT_VALUES, NO_MDNS, chromium, run_jobs, serving
from playwright.sync_api import Browser, Page, Request, expect
from playwright.sync_api import Error as PlaywrightError
from test_workbench_words import ALLOWED, ENGLISH, identifiers, visible

from api.app import create_app
from core.settings import ROOT, get_settings
from engine import catalog, situations
from engine.actors import add_clerk
from engine.advance import companion_step, load_case, source_holder
from engine.demo import seed
from engine.directory_manage import counter_kind
from engine.guards import Guards, load_materials
from states.compiler import CompiledItem
from states.defaults import WITHDRAW, is_send_back
from states.schema import ItemDefinition, Material
from storage import migrate
from storage.db import make_engine, session_scope
from storage.object_factory import get_store
from storage.tables import Counter, CounterItem, Unit

# Chromium looks up Google hosts whatever its flags: the module runs in a network namespace of its own.
pytestmark = [pytest.mark.browser, pytest.mark.netns]

SHOTS = ROOT / "docs" / "screenshots"
ROLES = {"clerk": "收件员", "reviewer": "审核员", "approver": "审批员", "inspector": "踏勘员"}
REFUSALS = ("rejected", "not_accepted", "withdrawn")
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@dataclass
class Server:
    url: str
    engine: sa.Engine
    tokens: dict[tuple[str, str], str]  # (counter, role) → a one-role clerk's token
    names: dict[tuple[str, str], str]
    demo: dict[str, str] = field(default_factory=dict)  # the demo's clerks (赵督查, 孙设计 …): name → token

    def count(self, sql: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()

    def counts(self) -> tuple[int, ...]:
        """Cases, history events and outbox jobs: what a repeated POST would add to."""
        with self.engine.connect() as conn:
            return tuple(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                         for t in ("cases", "history", "outbox"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("walk")
    settings = get_settings()
    objects, settings.object_dir = settings.object_dir, tmp / "objects"
    get_store.cache_clear()
    engine = make_engine(f"sqlite:///{tmp / 'tongban.db'}")
    migrate.upgrade(engine)
    tokens, names = {}, {}
    with session_scope(engine) as s:
        demo = {t["name"]: t["token"] for t in seed(s, ROOT / "catalog" / "items", ROOT / "catalog" / "alliance.yaml",
                                                    tmp / "tokens.json", 30)}
        # One clerk per role at every staffed counter, named in Chinese by unit and role (济审审核员).
        for cid, abbr in s.execute(sa.select(Counter.id, Unit.doc_abbr).join(Unit, Unit.id == Counter.unit_id)):
            if counter_kind(s, cid) == "self_service":
                continue
            for role, label in ROLES.items():
                names[(cid, role)] = f"{abbr}{label}"
                tokens[(cid, role)] = add_clerk(s, names[(cid, role)], cid, [role], 1)[1]
    with serving(create_app(engine)) as url:
        yield Server(url, engine, tokens, names, demo)
    engine.dispose()
    settings.object_dir = objects
    get_store.cache_clear()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium(*CAMERA_ARGS, NO_MDNS) as b:
        yield b


def shot(page: Page, name: str, whole: bool = False) -> None:
    """What the screen shows at 1366×768 (``whole``: the page from top to bottom, for long forms)."""
    page.screenshot(path=str(SHOTS / f"walk_{name}.png"), full_page=whole)


def distances(item: CompiledItem) -> dict[str, int]:
    """Steps from each state to the nearest final state that is not a refusal; a branch's final
    state is as far as its parallel state (the join moves that on)."""
    dist = {n: 0 for n, ref in item.table.items()
            if ref.state.final and ref.parallel is None and ref.state.outcome not in REFUSALS}
    for _ in range(len(item.table) + 1):
        for (_, src), t in item.routes.items():
            if t.dest in dist and not is_send_back(t) and t.trigger != WITHDRAW:
                dist[src] = min(dist.get(src, 1 << 30), dist[t.dest] + 1)
        for n, ref in item.table.items():
            if ref.parallel and ref.state.final and ref.parallel in dist:
                dist[n] = dist[ref.parallel]
    return dist


@contextmanager
def sent(page: Page) -> Iterator[list[str]]:
    """The methods of the page's own navigations meanwhile (a POST among them: the browser sent a
    form again)."""
    methods: list[str] = []

    def note(request: Request) -> None:
        if request.is_navigation_request() and request.frame == page.main_frame:
            methods.append(request.method)

    page.on("request", note)
    try:
        yield methods
    finally:
        page.remove_listener("request", note)


@dataclass
class Step:
    trigger: str
    source: str
    dest: str
    counter: str
    role: str
    label: str


@dataclass
class Walker:
    browser: Browser
    server: Server
    pages: list[tuple[str, str]] = field(default_factory=list)  # (where, HTML) of every page shown
    signed: dict[tuple[str, str], Page] = field(default_factory=dict)
    # The special branches, each walked once: on the first item whose definition offers it.
    todo: set[str] = field(default_factory=lambda: {"supplement", "inspection", "extension", "claim", "send_back"})
    posts: int = 0
    leave_out: str | None = None  # the material the case walked into 补正 was taken in without

    # -- the browser ------------------------------------------------------------------------
    def clerk(self, counter: str, role: str) -> Page:
        key = (counter, role)
        if key not in self.signed:
            ctx = self.browser.new_context(viewport=DESKTOP, locale="zh-CN")
            page = ctx.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{self.server.url}/ui/login")
            page.fill("#token", self.server.tokens[key])
            page.click("button[type=submit]")
            expect(page.locator("header .who")).to_contain_text(self.server.names[key])
            self.signed[key] = page
        return self.signed[key]

    def read(self, page: Page, where: str) -> None:
        self.pages.append((f"{where} {page.url.removeprefix(self.server.url)}", page.content()))

    def read_diagram(self, page: Page, number: str) -> None:
        """The case's diagram is an image: its drawn words (the <text>, not the <title> tooltips
        Graphviz gives each node by its id) are read like a page's."""
        svg = page.request.get(f"{self.server.url}/ui/cases/{number}/diagram.svg").text()
        words = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))
        self.pages.append((f"SVG /ui/cases/{number}/diagram.svg", f"<p>{words}</p>"))

    def goto(self, page: Page, path: str) -> None:
        try:
            page.goto(self.server.url + path)
        except PlaywrightError as exc:
            # A case page left open follows its case (static/case.js reloads it when the system
            # moved it): that reload of the same address may cross this one.
            if "interrupted by another navigation" not in str(exc):
                raise
            page.wait_for_load_state()
        expect(page).to_have_url(self.server.url + path)
        self.read(page, "GET")

    def submit(self, page: Page, selector: str, what: str, check: Callable[[], None] | None = None,
               stay: bool = True) -> None:
        """Press a form's button (a POST answered with a redirect), ``check`` the result, then F5
        and Back — and Forward, to the result again, unless the page is not used after (``stay``):
        none of them may write anything."""
        button = page.locator(selector)
        expect(button, f"{what}: no button {selector} on {page.url}").to_be_enabled()
        with page.expect_navigation():
            button.click()
        self.posts += 1
        after = self.server.counts()
        landed = page.url
        self.read(page, f"POST {what} →")
        expect(page.locator("#error")).to_have_count(0)
        if check:
            check()
        with sent(page) as methods:
            page.reload()
            page.go_back()
            if stay:
                page.go_forward()
                expect(page).to_have_url(landed)
        assert self.server.counts() == after, f"F5/Back after {what} wrote something"
        assert set(methods) <= {"GET"}, f"F5/Back after {what} sent {methods}"

    # -- the case ---------------------------------------------------------------------------
    def intake(self, code: str, leave_out: str | None = None, name: str | None = None) -> tuple[str, str, Page]:
        """Take a case of ``code`` in at the first staffed counter that takes it in, every material
        the 情形 asks for ticked (but ``leave_out``); returns the number, the query code and the
        clerk's page."""
        with session_scope(self.server.engine, readonly=True) as s:
            counter = next(c for c in s.execute(sa.select(CounterItem.counter_id).where(
                CounterItem.item_code == code, CounterItem.role == "intake").order_by(CounterItem.counter_id)
                ).scalars() if (c, "clerk") in self.server.tokens)
            d = catalog.compiled(s, catalog.latest_version(s, code).id).definition
        answers, wanted = asked(d)
        page = self.clerk(counter, "clerk")
        self.goto(page, f"/ui/cases/new?item={code}")
        page.select_option("select[name=kind]", "company")
        page.fill("input[name=name]", name or f"{d.name}示范申请单位有限公司")
        page.fill("input[name=id_number]", "91370100MA3C4K2L43")
        page.fill("input[name=phone]", "0531-86001234")
        page.fill("input[name=address]", "山东省济南市历下区泉城路 188 号")
        for q, o in answers.items():
            page.select_option("#situations select[name=situation]" + f":has(option[value='{q}:{o}'])",
                               f"{q}:{o}")
        for m in wanted:
            if m.id != leave_out:
                page.check(f"tr[data-material={m.id}] input[name=materials]")
        if name is None:
            shot(page, f"{code}_intake", whole=True)
        before = self.server.counts()
        self.submit(page, "button:has-text('确认收件')", f"{code} 收件")
        number, query = page.locator("#number").inner_text(), page.locator("#query-code").inner_text()
        assert self.server.counts()[0] == before[0] + 1
        return number, query, page

    def case(self, number: str) -> tuple[CompiledItem, dict[str, Any]]:
        with session_scope(self.server.engine, readonly=True) as s:
            case = load_case(s, number)
            return catalog.compiled(s, case["item_version_id"]), dict(case)

    def next_step(self, number: str) -> Step | None:
        """The step a person takes now on the main path (or into a special branch still to walk),
        and who: the clerk with that one role at the holding counter — for the intake counter's
        steps the companion's counter — as tests/test_every_path.py picks them."""
        with session_scope(self.server.engine, readonly=True) as s:
            case = load_case(s, number)
            item = catalog.compiled(s, case["item_version_id"])
            dist = distances(item)
            order = {t.trigger: i for i, t in enumerate(item.definition.transitions)}
            best: tuple[int, int, Step] | None = None
            for name in item.active_names(case["state"], case["branches"]):
                for (trigger, src), t in item.routes.items():
                    if src != name or t.auto or set(t.roles) <= {"system"} or t.dest not in dist:
                        continue
                    dest = item.table[t.dest].state
                    into_supplement = dest.status == 6
                    if into_supplement and not (self.leave_out and "supplement" in self.todo):
                        continue
                    guards = Guards(s, item, case, {"comment": "理由"})
                    if any(guards.why_closed(g, t.dest) for g in item.guards_of(t) if g != "comment_given"):
                        continue
                    companion = item.table[src].parallel is None and item.table[src].state.holder == "intake"
                    role = "clerk" if companion else next(r for r in t.roles if r in ROLES)
                    special = (into_supplement or (dest.video == "inspection" and "inspection" in self.todo))
                    score = (-1 if special else dist[t.dest], order[trigger])
                    if best is None or score < best[:2]:
                        best = (*score, Step(trigger, src, t.dest, source_holder(item, case, src), role, t.label))
        return best[2] if best else None

    def walk(self, code: str) -> str:
        """One case of ``code`` from intake to its final state; returns the case number."""
        with session_scope(self.server.engine, readonly=True) as s:
            item = catalog.compiled(s, catalog.latest_version(s, code).id)
        supplement = "supplement" in self.todo and any(
            item.initial in t.source and item.table[t.dest].state.status == 6 for t in item.definition.transitions)
        leave_out = self.leave_out = None
        if supplement:  # a required material not brought: the 补正 checklist ticks it
            leave_out = self.leave_out = [m.id for m in asked(item.definition)[1]
                                          if m.required and not m.deferrable][-1]
        number, _, _ = self.intake(code, leave_out)
        seen = 0
        while True:
            run_jobs(self.server.engine)
            item, case = self.case(number)
            if item.table[case["state"]].state.final:
                break
            step = self.next_step(number)
            assert step is not None, f"{code}: no step a person can take in {case['state']}"
            seen += 1
            assert seen < 30, f"{code}: the walk does not end"
            self.act(code, number, item, step, leave_out)
        outcome = item.table[case["state"]].state.outcome
        assert outcome not in REFUSALS, f"{code} ended in {case['state']}"
        page = self.clerk(case["intake_counter_id"], "clerk")
        self.goto(page, f"/ui/cases/{number}")
        expect(page.locator("#state-label")).to_have_text(item.table[case["state"]].state.label)
        expect(page.locator("#actions")).to_contain_text("已办结")
        shot(page, f"{code}_done")
        self.read_diagram(page, number)
        return number

    def act(self, code: str, number: str, item: CompiledItem, step: Step, leave_out: str | None) -> None:
        """``step`` on its clerk's page; before it, the special branches this page offers first."""
        page = self.clerk(step.counter, step.role)
        url = f"/ui/cases/{number}"
        self.goto(page, url)
        src = item.table[step.source].state
        what = f"{code} {step.label} ({self.server.names[(step.counter, step.role)]})"
        if "claim" in self.todo and not companion_step(item, step.source) and page.locator("#claim").count():
            self.todo.discard("claim")
            self.submit(page, "#claim", f"{code} 认领")
            expect(page.locator("#claims")).to_contain_text(self.server.names[(step.counter, step.role)])
        if ("extension" in self.todo and step.role == "approver" and page.locator("#extend").count()):
            self.todo.discard("extension")
            page.fill("#extension-form textarea[name=reason]", "需要补充核查, 延长审查期限")
            self.submit(page, "#extend", f"{code} 延期")
            expect(page.locator("#legal-due")).to_contain_text("已延期")
            shot(page, "extension")
        if src.video == "inspection" and "inspection" in self.todo:
            self.todo.discard("inspection")
            self.inspect(page, number)
            return
        if "send_back" in self.todo and not leave_out and page.locator("#send-back-form").count():
            self.todo.discard("send_back")
            self.send_back(code, number, item, page, step)
            return
        if leave_out and src.status == 6:  # 补正: the material brought, marked on its line, then done
            self.submit(page, f"li[data-material={leave_out}] button:has-text('标记已收')", f"{code} 标记已收")
        form = page.locator(f"form[data-form={step.trigger}]")
        expect(form, f"{what}: no form on the page").to_have_count(1)
        if item.table[step.dest].state.status == 6:
            self.todo.discard("supplement")
            expect(form.locator(f"input[name=tick][value={leave_out}]")).to_be_checked()
            form.locator("textarea[name=comment]").fill("请补交所缺材料, 见补正清单")
            shot(page, "supplement")
        elif form.locator("textarea[name=comment]").count():
            form.locator("textarea[name=comment]").fill("经审查, 同意")
        for f in form.locator("[data-cert]").all():
            f.fill(cert_value(f.get_attribute("data-cert") or "", f.get_attribute("type")))
        def check() -> None:
            expect(page.locator("#done")).to_contain_text(step.label)
            if src.status == 6:
                expect(page.locator("#timeline")).to_contain_text("请补交所缺材料")

        # The next step opens its page afresh (the system may have moved the case meanwhile).
        self.submit(page, f"button[data-trigger={step.trigger}]", what, check, stay=False)

    def send_back(self, code: str, number: str, item: CompiledItem, page: Page, step: Step) -> None:
        """退回: the step to return to chosen on the page, with the reason; the case is back there
        (the walk then takes it on again from that step)."""
        choice = page.locator("#send-back-target option").first
        trigger, label = choice.get_attribute("value") or "", choice.inner_text()
        back = item.table[item.routes[(trigger, step.source)].dest].state
        page.select_option("#send-back-target", trigger)
        page.fill("#send-back-form textarea[name=comment]", "申请表填写有误, 退回重新核对")

        def check() -> None:
            expect(page.locator("#state-label")).to_have_text(back.label)
            expect(page.locator("#done")).to_contain_text(label)
            expect(page.locator("#timeline")).to_contain_text("申请表填写有误")

        self.submit(page, "#send-back", f"{code} {label}", check)
        check()  # after F5, Back and Forward: the same page, the case sent back once
        with session_scope(self.server.engine, readonly=True) as s:
            assert load_case(s, number)["state"] == back.id
        shot(page, "send_back")

    def withdraw(self, code: str) -> str:
        """撤回 of a new case of ``code``: the companion records the applicant's withdrawal with the
        reason; F5, Back and Forward after it, and the form sent again from the page Back shows,
        withdraw nothing twice and show no error. Returns the case number."""
        with session_scope(self.server.engine, readonly=True) as s:
            d = catalog.compiled(s, catalog.latest_version(s, code).id).definition
        number, _, page = self.intake(code, name=f"{d.name}撤回示范有限公司")
        url = f"/ui/cases/{number}"
        self.goto(page, url)
        item, _ = self.case(number)
        withdrawn = next(t for (trigger, _), t in item.routes.items() if trigger == WITHDRAW)
        label = item.table[withdrawn.dest].state.label
        page.fill("form[data-form=withdraw] textarea[name=comment]", "申请人决定暂不办理")

        def check() -> None:
            expect(page.locator("#state-label")).to_have_text(label)
            expect(page.locator("#state-label")).to_have_attribute("data-tone", "withdrawn")
            expect(page.locator("#timeline")).to_contain_text("申请人决定暂不办理")
            expect(page.locator("form[data-form=withdraw]")).to_have_count(0)

        self.submit(page, "button[data-trigger=withdraw]", f"{code} 撤回", check)
        landed, after = page.url, self.server.counts()
        check()
        # Back to the page the form was sent from: if the browser shows it as it was, sending the
        # form again is shown the first result; either way nothing is written.
        with sent(page) as methods:
            page.go_back()
        expect(page.locator("#error")).to_have_count(0)
        again = page.locator("button[data-trigger=withdraw]")
        if again.count():
            with page.expect_navigation():
                again.click()
            expect(page).to_have_url(landed)
            expect(page.locator("#error")).to_have_count(0)
        else:
            check()
        assert set(methods) <= {"GET"}, methods
        assert self.server.counts() == after, f"{code}: the withdrawal was sent twice"
        with session_scope(self.server.engine, readonly=True) as s:
            case = load_case(s, number)
            assert item.table[case["state"]].state.outcome == "withdrawn"
            events = s.execute(sa.text("SELECT count(*) FROM history WHERE case_id = :c AND to_state = :w"),
                               {"c": case["id"], "w": case["state"]}).scalar_one()
        assert events == 1, f"{code}: {events} withdrawals"
        return number

    def inspect(self, page: Page, number: str) -> None:
        """远程踏勘: the inspector opens the video step from the case page and fills its checklist
        in the room; the engine fires the step's 通过 transition. (The room's page joins the call on
        every load: F5 there is a new join by design; Back creates no case.)"""
        case_url = page.url
        with sent(page) as methods, page.expect_navigation():
            page.click("#video-open")
        self.posts += 1
        assert methods == ["POST", "GET"], methods  # opened, then the room by a 303
        room = page.url
        before = self.server.counts()[0]
        rooms = "SELECT count(*) FROM video_rooms"
        opened = f"SELECT count(*) FROM history h JOIN cases c ON c.id = h.case_id WHERE c.number = '{number}' " \
                 "AND h.kind = 'video_open'"
        expect(page.locator("#status")).to_have_text("已连接", timeout=20_000)
        once = (self.server.count(rooms), self.server.count(opened))
        assert once[1] == 1
        present = "SELECT count(*) FROM video_participants p JOIN video_rooms r ON r.id = p.room_id " \
                  f"JOIN cases c ON c.id = r.case_id WHERE c.number = '{number}' AND p.left_at IS NULL"

        def in_room(n: int) -> None:  # the page that left said so (its beacon), no one is there twice
            for _ in range(100):
                if self.server.count(present) == n:
                    return
                page.wait_for_timeout(100)
            assert self.server.count(present) == n, "a clerk left in the room by the page they left"

        in_room(1)
        # F5 in the room: the room page again (a GET, joining the call anew), never the POST
        # again: no second room, no second opening; Back to the case page, Forward to the room.
        with sent(page) as methods:
            page.reload()
            expect(page.locator("#status")).to_have_text("已连接", timeout=20_000)
            in_room(1)
            page.go_back()
            expect(page).to_have_url(case_url)
            expect(page.locator("#error")).to_have_count(0)
            in_room(0)
            page.go_forward()
            expect(page).to_have_url(room)
            expect(page.locator("#status")).to_have_text("已连接", timeout=20_000)
            in_room(1)
        assert set(methods) <= {"GET"}, f"F5/Back in the room sent {methods}"
        assert (self.server.count(rooms), self.server.count(opened)) == once
        box = page.locator("#inspection-box")
        for radio in box.locator("input[type=radio][value='1']").all():
            radio.check()
        shot(page, "inspection_room")
        self.read(page, "GET")
        box.locator("button[type=submit]").click()
        expect(page.locator("#notice")).to_contain_text("通过")
        page.go_back()
        assert self.server.counts()[0] == before
        run_jobs(self.server.engine)
        self.goto(page, f"/ui/cases/{number}")
        expect(page.locator(".checklist[data-passed=yes]")).to_contain_text("✔")


def asked(d: ItemDefinition) -> tuple[dict[str, str], list[Material]]:
    """The 情形 answered (each question's last option, as tests/test_every_path.py does) and the
    materials the applicant brings for it (those from the certificate library need not be)."""
    answers = {q.id: q.options[-1].id for q in d.situations}
    return answers, [m for m in situations.selected_materials(d, answers) if m.library is None]


def cert_value(field_id: str, kind: str | None) -> str:
    """What an approver enters for a certificate's field: the shared demo values, else a date or text."""
    if field_id in CERT_VALUES:
        return CERT_VALUES[field_id]
    return "2024-01-02" if kind == "date" else "依申请核定"


def leaks(pages: list[tuple[str, str]], names: set[str]) -> list[str]:
    out = []
    for where, html in pages:
        text = visible(html)
        words = set(re.findall(r"[A-Za-z][A-Za-z0-9_\-]*[A-Za-z0-9]|[A-Za-z]", text))
        words -= set(re.findall(r"=([A-Za-z]+)", where))
        found = sorted((words & names) | {x for x in words if ("_" in x or "-" in x)}
                       | {x for x in words - ALLOWED if len(x) > 1 and x.isascii() and not x.isupper()})
        if m := ENGLISH.search(text):
            found.append(m.group(0))
        if found:
            out.append(f"{where}: {found}")
    return out


def test_every_demo_item_from_intake_to_delivery_in_the_pages(browser: Browser, server: Server) -> None:
    walker = Walker(browser, server)
    with session_scope(server.engine, readonly=True) as s:
        codes = [it["code"] for it in catalog.list_items(s)]
    assert len(codes) >= 12
    finished = [walker.walk(code) for code in codes]
    assert not walker.todo, f"special branches no item offered: {walker.todo}"
    # 撤回, of every item: the companion records the applicant's withdrawal, with the reason.
    withdrawn = [walker.withdraw(code) for code in codes]
    page = walker.clerk(walker.case(withdrawn[0])[1]["intake_counter_id"], "clerk")
    walker.goto(page, f"/ui/cases/{withdrawn[0]}")
    shot(page, "withdrawn")
    walker.read_diagram(page, withdrawn[0])
    walker.goto(page, "/ui/queue?tab=finished")
    expect(page.locator(f"tr[data-number='{finished[0]}'], tr[data-number='{withdrawn[0]}']").first).to_be_visible()
    shot(page, "queue_finished")
    names = identifiers(server)  # type: ignore[arg-type]
    assert leaks([("a page", "<p>已接件 received</p>")], names)  # the reader does find what it looks for
    found = leaks(walker.pages, names)
    assert not found, "\n".join(found)
    print(f"\nwalk: {len(codes)} items, {walker.posts} POSTs, {len(walker.pages)} pages read")


TYPED = {"name": "济南键盘书店有限公司", "id_number": "91370100MA3C4K2L43", "phone": "0531-86005678",
         "address": "山东省济南市历下区泉城路 9 号"}


FOCUSED = """() => { const e = document.activeElement, r = e.getBoundingClientRect();
  return [e.tagName, e.name || '', e.type || '', e.value || '', !!e.closest('#intake'),
          {x: r.left, y: r.top, width: r.width, height: r.height}]; }"""


def test_intake_by_keyboard_alone(browser: Browser, server: Server) -> None:
    """收件 at 1366×768 with Tab, typing, Space and Enter only: no click after signing in. The focus
    goes through the form in order, each field shown on the screen when it has the focus; the
    收件成功 page's autofocused button prints the receipt on Enter."""
    walker = Walker(browser, server)
    page = walker.clerk("jn-kuayu", "clerk")
    walker.goto(page, "/ui/cases/new")
    item = page.locator("input[name=item]").get_attribute("value")
    before = server.counts()
    ticked, seen, answered = [], [], []
    for _ in range(80):
        # document.activeElement: a page without the window's focus matches no :focus
        tag, name, kind, value, in_form, box = page.eval_on_selector("html", FOCUSED)
        # on the screen (to the pixel: Chromium scrolls a focused field in by fractions)
        assert box["x"] >= -1 and box["x"] + box["width"] <= DESKTOP["width"] + 1, (name, box)
        assert box["y"] >= -1 and box["y"] + box["height"] <= DESKTOP["height"] + 1, (name, box)
        seen.append(name or tag)
        if name in TYPED:
            page.keyboard.type(TYPED[name])
        elif name == "situation":  # a 情形 question: End picks its last answer, the one asking the most
            page.keyboard.press("End")
            answered.append(page.eval_on_selector("html", "() => document.activeElement.value"))
        elif name == "materials":
            page.keyboard.press("Space")
            ticked.append(value)
        elif tag == "BUTTON" and kind == "submit" and in_form:
            shot(page, "intake_keyboard")
            with page.expect_navigation():
                page.keyboard.press("Enter")
            break
        page.keyboard.press("Tab")
    else:
        pytest.fail(f"Tab never reached 确认收件: {seen}")
    assert seen[0] == "kind", seen  # the form starts where the clerk types, not at the menu
    expect(page.locator("h1")).to_have_text("收件成功")
    assert server.counts()[0] == before[0] + 1
    number = page.locator("#number").inner_text()
    with session_scope(server.engine, readonly=True) as s:
        case = load_case(s, number)
        received = {m for m, r in load_materials(s, case["id"]).items() if r["status"] == "received"}
        intake = s.execute(sa.text("SELECT data FROM history WHERE case_id = :c AND seq = 1"),
                           {"c": case["id"]}).scalar_one()
    intake = json.loads(intake) if isinstance(intake, str) else intake
    assert case["item_code"] == item and case["applicant"]["name"] == TYPED["name"]
    assert answered and all(a.split(":")[1] for a in answered)  # every question answered by keyboard
    assert intake["situation"] == dict(a.split(":") for a in answered), intake
    assert ticked and received == set(ticked)
    with page.expect_popup() as popup:  # the 收件凭证, in a tab of its own
        page.keyboard.press("Enter")
    popup.value.close()
    found = leaks(walker.pages, identifiers(server))  # type: ignore[arg-type]
    assert not found, "\n".join(found)


def on_phone(page: Page, where: str) -> None:
    """Nothing wider than the screen, and every control that is shown lies within it."""
    width, client = page.eval_on_selector("html", "e => [e.scrollWidth, e.clientWidth]")
    assert width <= client, f"{where}: the page is {width}px wide on a {client}px screen"
    outside = page.eval_on_selector_all(
        "a, button, input, select, textarea, summary",
        "els => els.filter(e => e.type !== 'hidden' && e.getClientRects().length)"
        ".map(e => [e.outerHTML.slice(0, 90), e.getBoundingClientRect()])"
        ".filter(([, r]) => r.left < 0 || r.right > document.documentElement.clientWidth + 1)"
        ".map(([h, r]) => h + ' @' + Math.round(r.left) + '..' + Math.round(r.right))")
    assert not outside, f"{where}: controls beyond the screen: {outside}"


def test_the_applicants_pages_on_a_phone(browser: Browser, server: Server) -> None:
    """办事指南, 要件预审, 网上预约 and 办件进度查询 at 390×844 with touch: no sideways scrolling, every
    control on the screen; the progress query is sent with a tap and shows the case."""
    walker = Walker(browser, server)
    with session_scope(server.engine, readonly=True) as s:
        code = catalog.list_items(s)[0]["code"]
    number, query, clerk = walker.intake(code, name="手机查询示范有限公司")
    ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    phone = ctx.new_page()
    phone.set_default_timeout(15_000)
    for path, name in (("/guide", "guide"), (f"/guide/{code}", "guide_item"),
                       (f"/guide/{code}/prereview", "prereview"), ("/booking", "booking"),
                       ("/progress", "progress")):
        walker.goto(phone, path)
        on_phone(phone, path)
        phone.screenshot(path=str(SHOTS / f"walk_phone_{name}.png"))
    phone.locator("#progress-form input[name=number]").fill(number)
    phone.locator("#progress-form input[name=code]").fill(query)
    with phone.expect_navigation():
        phone.locator("#progress-form button[type=submit]").tap()
    walker.read(phone, "POST")
    expect(phone.locator("main")).to_contain_text(number)
    # The 收件凭证 is drawn when the clerk prints it (or the case leaves intake): until then there
    # is nothing to download, and the page says so.
    expect(phone.locator("#documents-pending")).to_be_visible()
    expect(phone.locator("#document-form")).to_have_count(0)
    with clerk.expect_popup() as popup:
        clerk.click("#print-receipt")
    receipt = popup.value
    receipt.wait_for_load_state()
    walker.read(receipt, "GET")
    with receipt.expect_navigation():
        receipt.click("button:has-text('现在出具并打印')")
    run_jobs(server.engine)
    receipt.close()
    phone.locator("#progress-form input[name=code]").fill(query)
    with phone.expect_navigation():
        phone.locator("#progress-form button[type=submit]").tap()
    walker.read(phone, "POST")
    expect(phone.locator("#document-form select[name=document]")).to_contain_text("收件凭证")
    on_phone(phone, "progress result")
    phone.screenshot(path=str(SHOTS / "walk_phone_progress_result.png"))
    ctx.close()
    found = leaks(walker.pages, identifiers(server))  # type: ignore[arg-type]
    assert not found, "\n".join(found)


LOOK = """(e, tones) => { const look = s => [s.backgroundColor, s.borderTopColor, s.borderTopStyle, s.color];
  return [look(getComputedStyle(e)), ...tones.map(t => { const probe = document.createElement('span');
    probe.className = e.className.replace(/tone-\\S+/, t); e.parentElement.append(probe);
    const out = look(getComputedStyle(probe)); probe.remove(); return out; })]; }"""


def test_the_withdrawn_pill_has_its_own_look(browser: Browser, server: Server) -> None:
    """A withdrawn case's state pill, on its page, in the finished queue and in the search list:
    the item's own zh-CN label and a look of its own, neither the grey of a state the sheet does not
    know nor the look of an approval, a refusal or a case in progress."""
    walker = Walker(browser, server)
    with session_scope(server.engine, readonly=True) as s:
        code = catalog.list_items(s)[0]["code"]
    number = walker.withdraw(code)
    item, case = walker.case(number)
    label = item.table[case["state"]].state.label
    assert re.fullmatch(r"[\u4e00-\u9fff]+", label), label
    page = walker.clerk(case["intake_counter_id"], "clerk")
    others = ["tone-unknown", "tone-open", "tone-paused", "tone-approved", "tone-rejected"]
    for path, pill in ((f"/ui/cases/{number}", "#state-label"),
                       ("/ui/queue?tab=finished", f"tr[data-number='{number}'] .state-pill"),
                       (f"/ui/queue?q={number}", f"tr[data-number='{number}'] .state-pill")):
        walker.goto(page, path)
        shown = page.locator(pill)
        expect(shown).to_have_text(label)
        expect(shown).to_have_attribute("data-tone", "withdrawn")
        withdrawn, *looks = shown.evaluate(LOOK, others)
        grey = looks[0]
        assert len({tuple(x) for x in looks}) == len(others), f"{path}: tones that look alike: {looks}"
        for tone, look in zip(others, looks, strict=True):
            assert withdrawn != look, f"{path}: 已撤回 looks like {tone} {look}"
        assert withdrawn[:2] != grey[:2], f"{path}: the default grey"
    found = leaks(walker.pages, identifiers(server))  # type: ignore[arg-type]
    assert not found, "\n".join(found)


def test_the_progress_query_posts_once(browser: Browser, server: Server) -> None:
    """办件进度查询 by post/redirect/get: the lookup's POST answers with a 303 to the case's progress
    (the query code in no address), so F5 repeats the GET and Back and Forward send nothing; a
    wrong code is a 303 too and shows why in Chinese, changing nothing (tests/test_forms_browser.py
    walks F5 after it); the applicant's 撤回 there likewise."""
    walker = Walker(browser, server)
    with session_scope(server.engine, readonly=True) as s:
        code = catalog.list_items(s)[0]["code"]
    number, query, _ = walker.intake(code, name="进度查询示范有限公司")
    ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    walker.goto(page, "/progress")

    def look_up(code_: str) -> list[str]:
        page.locator("#progress-form input[name=number]").fill(number)
        page.locator("#progress-form input[name=code]").fill(code_)
        with sent(page) as methods, page.expect_navigation():
            page.locator("#progress-form button[type=submit]").click()
        walker.read(page, "POST")
        return methods

    before = server.counts()
    assert look_up(query) == ["POST", "GET"]
    shown = f"{server.url}/progress?number={number}"
    expect(page).to_have_url(shown)
    assert query not in page.url
    expect(page.locator("#result")).to_contain_text(number)
    with sent(page) as methods:
        page.reload()
        expect(page.locator("#result")).to_contain_text(number)
        page.go_back()
        expect(page).to_have_url(f"{server.url}/progress")
        expect(page.locator("#error")).to_have_count(0)
        page.go_forward()
        expect(page).to_have_url(shown)
        expect(page.locator("#result")).to_contain_text(number)
    assert set(methods) <= {"GET"}, f"F5/Back after the lookup sent {methods}"
    assert server.counts() == before
    # A wrong code: a 303 back to the form too, the reason in Chinese, no case shown, nothing written.
    assert look_up("ZZZZZZZZ") == ["POST", "GET"]
    expect(page).to_have_url(shown)
    expect(page.locator("#error")).to_have_text("未找到该办件, 请核对办件编号和查询码")
    expect(page.locator("#result")).to_have_count(0)
    assert server.counts() == before
    shot(page, "progress_wrong_code")
    # 撤回 by the applicant on the page: once, whatever F5 and Back do after it.
    assert look_up(query) == ["POST", "GET"]
    page.locator("#withdraw-form input[name=code]").fill(query)
    page.locator("#withdraw-form textarea[name=reason]").fill("已在本地窗口另行办理")
    with sent(page) as methods, page.expect_navigation():
        page.locator("#withdraw-form button[type=submit]").click()
    assert methods == ["POST", "GET"], methods
    walker.read(page, "POST")
    expect(page.locator("#done")).to_have_text("申请已撤回, 办件已结束。")
    after = server.counts()
    with sent(page) as methods:
        page.reload()
        expect(page.locator("#done")).to_have_text("申请已撤回, 办件已结束。")
        page.go_back()
        page.go_forward()
    assert set(methods) <= {"GET"}, f"F5/Back after the withdrawal sent {methods}"
    assert server.counts() == after
    expect(page.locator("#withdraw-form")).to_have_count(0)
    item, case = walker.case(number)
    assert item.table[case["state"]].state.outcome == "withdrawn"
    ctx.close()
    found = leaks(walker.pages, identifiers(server))  # type: ignore[arg-type]
    assert not found, "\n".join(found)


def book_on_the_page(walker: Walker, page: Page, name: str, phone: str) -> dict[str, str]:
    """网上预约 through its steps: the first item, counter and day offered, the first open slot;
    returns the booking form's fields as the browser sends them (its one-time token among them)."""
    walker.goto(page, "/booking")
    for select in ("#item", "#counter", "#date"):
        page.select_option(select, index=1 if page.locator(f"{select} option[value='']").count() else 0)
        with page.expect_navigation():
            page.click("#next")
        walker.read(page, "GET")
    page.locator("#slots label:has(input:not([disabled]))").first.click()
    page.fill("#name", name)
    page.fill("#phone", phone)
    return page.eval_on_selector("#book-form", "f => Object.fromEntries(new FormData(f))")


def test_the_pages_a_walk_does_not_reach(browser: Browser, server: Server) -> None:
    """The pages beside the walk, each at 1366×768 and read for internal identifiers like the
    walk's: the login form, the supervisor's dashboard, the designer's item page, the problem
    types, /verify, the error page, the print-wait page of a 收件凭证 not yet drawn, and the
    applicant's booking as /booking/manage finds it."""
    walker = Walker(browser, server)

    def signed(name: str) -> Page:
        # The dashboard's "更新于" is the browser's clock: a browser at a counter in China.
        ctx = browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        walker.goto(page, "/ui/login")
        page.fill("#token", server.demo[name])
        with page.expect_navigation():
            page.click("button[type=submit]")
        expect(page.locator("header .who")).to_contain_text(name)
        return page

    anonymous = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    anonymous.set_default_timeout(15_000)
    walker.goto(anonymous, "/ui/login")
    expect(anonymous.locator("#token")).to_be_visible()
    shot(anonymous, "login")
    with session_scope(server.engine, readonly=True) as s:
        code = catalog.list_items(s)[0]["code"]
    number, _, clerk = walker.intake(code, name="截图示范有限公司")
    supervisor = signed("赵督查")
    walker.goto(supervisor, "/ui/dashboard")
    expect(supervisor.locator("#updated")).not_to_contain_text("加载中")  # drawn from its JSON
    expect(supervisor.locator("#open-total")).not_to_have_text("–")
    walker.read(supervisor, "drawn")
    shot(supervisor, "dashboard")
    designer = signed("孙设计")
    walker.goto(designer, f"/ui/designer/items/{code}")
    expect(designer.locator("pre.mono")).to_contain_text(f"code: {code}")
    shot(designer, "designer_item")
    # The designer writes the ids: the triggers (as code) and the source are theirs to read; the
    # rest of the page names states, roles and conditions in Chinese.
    where, html = walker.pages.pop()
    walker.pages.append((where, re.sub(r"<code>[^<]*</code>|<pre[^>]*>.*?</pre>", "", html, flags=re.S)))
    walker.goto(anonymous, "/problems")
    shot(anonymous, "problem_types")
    # The problem types are for those who program against the API (field and header names in
    # English by nature): read for the product's internal identifiers only.
    where, html = walker.pages.pop()
    ids = identifiers(server)  # type: ignore[arg-type]
    shown = set(re.findall(r"[A-Za-z][A-Za-z0-9_\-]*", visible(re.sub(r"<code>[^<]*</code>", "", html))))
    assert not shown & ids, f"{where}: {sorted(shown & ids)}"
    walker.goto(anonymous, "/verify")
    shot(anonymous, "verify")
    walker.goto(clerk, f"/ui/cases/{number}/print/receipt")
    expect(clerk.locator("button:has-text('现在出具并打印')")).to_be_visible()
    shot(clerk, "print_wait")
    walker.goto(clerk, "/ui/cases/3701009999999999999")
    expect(clerk.locator("h1")).to_be_visible()
    shot(clerk, "error")
    book_on_the_page(walker, anonymous, "刘洋", "13800000031")
    with anonymous.expect_navigation():
        anonymous.click("#book")
    code_ = anonymous.locator("#code").inner_text()
    walker.goto(anonymous, "/booking/manage")
    anonymous.fill("#code-input", code_)
    with anonymous.expect_navigation():
        anonymous.click("#lookup-form button[type=submit]")
    expect(anonymous).to_have_url(f"{server.url}/booking/mine")
    anonymous.select_option("#new-date", index=0)
    with anonymous.expect_navigation():
        anonymous.click("#show-slots")
    walker.read(anonymous, "GET")
    expect(anonymous.locator("#new-slots")).to_be_visible()
    shot(anonymous, "booking_manage", whole=True)
    found = leaks(walker.pages, identifiers(server))  # type: ignore[arg-type]
    assert not found, "\n".join(found)
