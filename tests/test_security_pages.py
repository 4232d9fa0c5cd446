"""Sessions and headers of the pages under attack: login CSRF, cross-origin writes riding on the
session cookie, session fixation, and the security headers of every answer.

Without a browser (SQLite and PostgreSQL): the login form's pre-session cookie and token, the
Origin/Referer/Sec-Fetch-Site check, the session token rotating at login and revoked at logout,
and the header set on every route of the app. In headless Chromium against a real uvicorn server
(a network namespace of their own): pages on other origins — another port of 127.0.0.1, which
shares the cookies, and 127.0.0.2, another site — trying to sign the victim in as the attacker;
every page visited with a CSP violation listener; camera and microphone only on the video page.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import ALL_FGS, Demo, answer_situations, page_login
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from api.routing import all_routes
from api.security_headers import CSP
from core.settings import ROOT
from tests.test_video_media import inspection_case, link, open_room

ORIGIN = "http://testserver"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        "--disable-features=WebRtcHideLocalIpsWithMdns"]
BROWSER = [pytest.mark.browser, pytest.mark.netns]  # Chromium looks up Google hosts whatever its flags


def _client(demo: Demo, **kw: Any) -> TestClient:
    return TestClient(demo.client.app, **kw)


def _signed_in(demo: Demo, who: str, **kw: Any) -> TestClient:
    client = _client(demo, **kw)
    assert page_login(client, demo.tokens[who]).status_code == 303
    return client


def _csrf(client: TestClient, path: str = "/ui/designer") -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(path).text)
    assert found
    return found.group(1)


def _login_csrf(form: str) -> str:
    found = re.search(r'name="login_csrf" value="([0-9a-f]+)"', form)
    return found.group(1) if found else ""


def _who(client: TestClient) -> str:
    """The name in the page header: who this browser is signed in as ("" when nobody)."""
    r = client.get("/ui/designer", follow_redirects=False)
    found = re.search(r'<form class="who"[^>]*>\s*<span>([^<·]+)', r.text) if r.status_code == 200 else None
    return found.group(1).strip() if found else ""


# --- login CSRF ----------------------------------------------------------------------------

def test_login_needs_the_forms_cookie_and_token_and_a_refusal_changes_no_session(demo: Demo) -> None:
    victim = _signed_in(demo, "王芳", headers={"Origin": ORIGIN})
    session = victim.cookies["tb_session"]
    tokens = demo.count("api_tokens")
    attacker = _client(demo)
    theirs = _login_csrf(attacker.get("/ui/login").text)
    attempts = [
        {"token": demo.tokens["李强"]},                           # no token, no pre-session cookie
        {"token": demo.tokens["李强"], "login_csrf": theirs},     # a token made for another browser's cookie
        {"token": demo.tokens["李强"], "login_csrf": "0" * 64},
    ]
    for data in attempts:
        r = victim.post("/ui/login", data=data, follow_redirects=False)
        assert r.status_code == 403 and "登录表单已失效" in r.text and "原有会话不变" in r.text, r.text
        assert "tb_session" not in r.headers.get("set-cookie", "")
    # The browser's own pre-session cookie with the attacker's token: refused as well.
    victim.cookies.set("tb_pre", attacker.cookies["tb_pre"])
    r = victim.post("/ui/login", data={"token": demo.tokens["李强"], "login_csrf": "1" * 64}, follow_redirects=False)
    assert r.status_code == 403
    assert victim.cookies["tb_session"] == session and _who(victim) == "王芳"
    assert demo.count("api_tokens") == tokens  # no session was issued


def test_cookie_carrying_writes_need_the_pages_own_origin(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    n = case["number"]
    wang = _signed_in(demo, "王芳")  # no default Origin: each request says its own
    csrf = _csrf(wang)
    url, form = f"/ui/cases/{n}/triggers/forward", {"csrf": csrf, "version": "1"}
    refused = [
        {"Origin": "http://evil.example"},
        {"Origin": "http://testserver:8080"},                  # another port: another origin
        {"Origin": "https://testserver"},                      # another scheme
        {},                                                     # neither Origin nor Referer
        {"Origin": "null"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Referer": "http://evil.example/ui/cases/x"},
        {"Origin": "http://evil.example", "Referer": f"{ORIGIN}/ui/"},  # a foreign Origin is final
        {"Sec-Fetch-Site": "same-site"},
    ]
    for headers in refused:
        r = wang.post(url, data=form, headers=headers, follow_redirects=False)
        assert r.status_code == 403 and "请求来源不符" in r.text, (headers, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
    assert demo.count("history") == 1
    # The API answers the same refusal as problem details when the cookie rides along.
    r = wang.post("/api/v1/cases", json={"item_code": "FGSFZRBG"}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/cross-origin"
    # Logout from elsewhere is refused too: the session stays.
    assert wang.post("/ui/logout", data={"csrf": csrf}, headers={"Origin": "http://evil.example"}).status_code == 403
    assert _who(wang) == "王芳"
    # Bearer clients are not cookie-authenticated: no Origin needed, and a foreign one changes nothing.
    r = demo.client.post(f"/api/v1/cases/{n}/triggers/forward",
                         headers=demo.h("王芳", **{"If-Match": '"1"', "Origin": "http://evil.example"}))
    assert r.status_code == 200, r.text
    # Same origin, by each kind of evidence: the page's Origin, a same-origin Referer, or (under
    # Referrer-Policy: no-referrer, Chromium's `Origin: null`) Sec-Fetch-Site: same-origin.
    for i, headers in enumerate(({"Origin": ORIGIN}, {"Referer": f"{ORIGIN}/ui/cases/{n}"},
                                 {"Origin": "null", "Sec-Fetch-Site": "same-origin"})):
        status = "missing" if i % 2 == 0 else "received"
        r = wang.post(f"/ui/cases/{n}/materials/license", data={"csrf": csrf, "version": str(2 + i), "status": status},
                      headers=headers, follow_redirects=False)
        assert r.status_code == 303, (headers, r.text)
    assert demo.count("history") == 5


def test_the_session_rotates_at_login_and_logout_revokes_it(demo: Demo) -> None:
    client = _client(demo, headers={"Origin": ORIGIN})
    planted = "tbs_" + "A" * 43
    client.cookies.set("tb_session", planted, domain="testserver.local")  # before login, as a fixation would
    assert _who(client) == ""
    assert page_login(client, demo.tokens["王芳"]).status_code == 303
    first = client.cookies["tb_session"]
    assert first not in (planted, demo.tokens["王芳"]) and first.startswith("tbs_")
    assert "tb_pre" not in client.cookies  # the pre-session cookie is spent
    assert _who(client) == "王芳"
    assert page_login(client, demo.tokens["王芳"]).status_code == 303
    second = client.cookies["tb_session"]
    assert second != first  # every login a new one
    other = _signed_in(demo, "王芳", headers={"Origin": ORIGIN})
    assert other.cookies["tb_session"] not in (first, second)
    # The API token in the cookie is no session (the cookie only ever holds session tokens).
    bare = _client(demo)
    bare.cookies.set("tb_session", demo.tokens["王芳"])
    assert _who(bare) == ""
    # Logout revokes this session only: the other browser and the API token keep working.
    assert client.post("/ui/logout", data={"csrf": _csrf(client)}, follow_redirects=False).status_code == 303
    stale = _client(demo)
    stale.cookies.set("tb_session", second)
    assert _who(stale) == ""
    assert _who(other) == "王芳"
    assert demo.client.get("/api/v1/items", headers=demo.h("王芳")).status_code == 200
    # A session token typed into the login form is not an API token.
    assert page_login(_client(demo), second).status_code == 401


# --- headers on every answer ---------------------------------------------------------------

def _directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}


def assert_secured(r: httpx.Response, where: str, https: bool = False) -> None:
    h = r.headers
    assert h.get("x-frame-options") == "DENY", where
    assert h.get("x-content-type-options") == "nosniff", where
    assert h.get("referrer-policy") == "no-referrer", where
    csp = _directives(h.get("content-security-policy", ""))
    assert csp.get("default-src") == ["'self'"] and csp.get("frame-ancestors") == ["'none'"], (where, csp)
    script = csp.get("script-src", ["?"])
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, where
    assert csp.get("object-src") == ["'none'"] and csp.get("base-uri") == ["'none'"], where
    perms = h.get("permissions-policy", "")
    path = r.request.url.path
    video = path.startswith("/video/")
    case_page = re.fullmatch(r"/ui/cases/[^/]+", path) is not None and path != "/ui/cases/new"  # 高拍仪
    assert f"camera=({'self' if video or case_page else ''})" in perms, (where, perms)
    assert f"microphone=({'self' if video else ''})" in perms, (where, perms)
    assert "geolocation=()" in perms, where
    assert ("strict-transport-security" in h) is https, where


STRICT = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
          "media-src 'self' blob:; connect-src 'self'")


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values.get(m.group(1), "x1"), path)


# The applicant's forms (no login) answer a refusal with a 303 to the form's page, so F5 there
# sends nothing again (api/pages/sealed.py): an empty one too.
REFUSED_BY_REDIRECT = {"/progress": "/progress", "/progress/rate": "/progress", "/progress/withdraw": "/progress",
                       "/progress/document": "/progress", "/booking": "/booking", "/booking/manage": "/booking/manage",
                       "/booking/cancel": "/booking/manage", "/booking/reschedule": "/booking/manage"}


def test_every_answer_carries_the_security_headers(demo: Demo) -> None:
    case = demo.create("王芳", "FGSFZRBG", ALL_FGS)
    wang = _signed_in(demo, "王芳", headers={"Origin": ORIGIN})
    values = {"number": case["number"], "code": "FGSFZRBG", "trigger": "forward", "material_id": "application",
              "page_id": "1", "evidence_id": "1", "room_id": "r1", "carrier": "sf", "name": "room.js"}
    app = demo.client.app
    statuses: dict[str, int] = {}
    seen = 0
    for route in all_routes(app.routes):
        path = getattr(route, "path", "")
        if not getattr(route, "methods", None):  # the /static mount
            for file in ("app.css", "dashboard.js", "forms.js", "verify.css"):
                r = wang.get(f"{path}/{file}")
                assert r.status_code == 200, file
                assert_secured(r, file)
            seen += 1
            continue
        url = _fill(path, values)
        for method in sorted(route.methods - {"HEAD"}):
            seen += 1
            if method == "GET":  # as the signed-in clerk: the page session, and a bearer token for the API
                headers = demo.h("王芳") if url.startswith("/api/") else {}
                r = wang.get(url, headers=headers, follow_redirects=False)
                statuses[path] = r.status_code
            else:  # a write without credentials (refused), and one with the cookie from elsewhere
                r = _client(demo).request(method, url, follow_redirects=False)
                if path in REFUSED_BY_REDIRECT:  # the applicant's forms: 303 back to the form, saying why there
                    assert r.status_code == 303 and r.headers["location"].startswith(REFUSED_BY_REDIRECT[path]), (
                        method, path, r.status_code)
                else:
                    assert 400 <= r.status_code < 500, (method, path, r.status_code)
                assert_secured(r, f"{method} {path} (anonymous)")
                r = wang.request(method, url, headers={"Origin": "http://evil.example"}, follow_redirects=False)
                assert r.status_code == 403, (method, path)
            assert r.status_code < 500, (method, path, r.text[:300])
            assert_secured(r, f"{method} {path}")
    assert seen > 70
    # The walk reached the real pages, not only refusals.
    for path in ("/ui/queue", "/ui/cases/new", "/ui/cases/{number}", "/ui/cases/{number}/diagram.svg", "/ui/designer",
                 "/ui/designer/items/{code}", "/ui/login", "/progress", "/api/v1/cases/{number}", "/openapi.json",
                 "/docs", "/video/static/{name}"):
        assert statuses[path] == 200, (path, statuses[path])
    assert statuses["/"] == 303 and statuses["/api/v1/dashboard"] == 403
    # The supervisor's dashboard; the login page; a page and an API refusal; 404s; 405; 413; a login redirect.
    zhao = _signed_in(demo, "赵督查")
    anonymous = _client(demo)
    answers = {
        "dashboard": zhao.get("/ui/dashboard"), "dashboard data": zhao.get("/api/v1/dashboard"),
        "login": anonymous.get("/ui/login"), "progress": anonymous.get("/progress"),
        "progress answer": anonymous.post("/progress", data={"number": case["number"], "code": case["query_code"]}),
        "API 401": anonymous.get("/api/v1/cases"),
        "page 404": anonymous.get("/ui/nope", headers={"Accept": "text/html"}),
        "API 404": anonymous.get("/api/v1/nope"), "static 404": anonymous.get("/static/nope.js"),
        "405": anonymous.patch("/ui/queue"), "413": anonymous.post("/api/v1/cases", content=b"x" * 2_000_001),
        "login redirect": anonymous.get("/ui/queue", follow_redirects=False),
        "verify": anonymous.get("/verify/NOPE"),
    }
    assert [r.status_code for r in answers.values()] == [
        200, 200, 200, 200, 200, 401, 404, 404, 404, 405, 413, 303, 404]
    for where, r in answers.items():
        assert_secured(r, where)
    assert answers["API 401"].headers["content-type"] == "application/problem+json"
    # Pages need nothing beyond the strict policy.
    assert answers["login"].headers["content-security-policy"].startswith(STRICT)
    # The video room page (and only /video/…) may use camera and microphone.
    number = inspection_case(demo)
    token = link(demo, open_room(demo, number), "applicant", "张三")
    room = anonymous.get(f"/video/join?t={token}")
    assert room.status_code == 200 and "room.js" in room.text
    assert_secured(room, "video room")
    # Over TLS (as the server sees the scheme): HSTS as well.
    tls = _client(demo, base_url="https://testserver")
    for path in ("/progress", "/api/v1/nope", "/static/app.css"):
        assert_secured(tls.get(path), f"https {path}", https=True)


def test_a_server_error_and_the_api_docs_carry_them_too(sqlite_demo: Demo) -> None:
    demo = sqlite_demo
    app = demo.client.app

    def boom() -> None:
        raise RuntimeError("planted failure")

    app.add_api_route("/boom-for-test", boom)
    r = TestClient(app, raise_server_exceptions=False).get("/boom-for-test")
    assert r.status_code == 500
    assert_secured(r, "500")
    # The API docs: served from this origin with no inline script (tests/test_docs_offline.py):
    # Swagger UI under the pages' strict policy, ReDoc with inline styles and blob workers only.
    docs = demo.client.get("/docs")
    assert_secured(docs, "/docs")
    assert docs.headers["content-security-policy"] == CSP
    redoc = demo.client.get("/redoc")
    assert_secured(redoc, "/redoc")
    assert _directives(redoc.headers["content-security-policy"])["script-src"] == ["'self'"]


# --- in Chromium -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push([e.violatedDirective, e.blockedURI || "inline", e.sourceFile, e.lineNumber].join(" ")));
"""


class Watched:
    """A browser context whose pages report every CSP violation (event and console message)."""

    def __init__(self, browser: Browser) -> None:
        self.context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        self.context.add_init_script(VIOLATIONS)
        self.console: list[str] = []
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.page.on("console", lambda m: self.console.append(m.text))
        self.visited: list[str] = []

    def check(self, where: str) -> None:
        """No violation on the page now shown (read before it is left)."""
        self.visited.append(where)
        events = self.page.evaluate("window.__csp || []")
        csp = [m for m in self.console if "Content Security Policy" in m or "Content-Security-Policy" in m]
        assert not events and not csp, (where, events, csp)

    def goto(self, url: str, where: str) -> None:
        r = self.page.goto(url)
        assert r is not None
        assert "default-src 'self'" in (r.headers.get("content-security-policy") or ""), where
        self.page.wait_for_load_state("networkidle")
        self.check(where)

    def session(self) -> str | None:
        return next((c["value"] for c in self.context.cookies() if c["name"] == "tb_session"), None)


def _sign_in(w: Watched, base: str, token: str, policy: bool = True) -> None:
    if policy:
        w.goto(f"{base}/ui/login", "login")
    else:
        w.page.goto(f"{base}/ui/login")
    w.page.fill("#token", token)
    w.page.click("form[action='/ui/login'] button[type=submit]")
    w.page.wait_for_load_state()


class Attacker:
    """Pages on other origins: each answers with the HTML it was given, under any path."""

    def __init__(self, host: str) -> None:
        self.html = b""
        attacker = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(attacker.html)

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.browser
@pytest.mark.netns
def test_a_page_elsewhere_cannot_sign_the_victim_in_as_the_attacker(
        sqlite_demo: Demo, serve_app: Any, browser: Browser) -> None:
    demo = sqlite_demo
    base = serve_app(demo.client.app)
    victim = Watched(browser)
    _sign_in(victim, base, demo.tokens["王芳"], policy=False)
    expect(victim.page.locator("form.who")).to_contain_text("王芳")
    session = victim.session()
    assert session
    # The attacker fetches a login form for themselves: a pre-session cookie and the token made from it.
    with httpx.Client(base_url=base) as own:
        token = _login_csrf(own.get("/ui/login").text)
        pre = own.cookies.get("tb_pre", "")
    page = (f'<!doctype html><meta charset="utf-8"><title>优惠活动</title>'
            f'<form id="f" method="post" action="{base}/ui/login">'
            f'<input name="token" value="{demo.tokens["李强"]}"><input name="login_csrf" value="{token}">'
            f'<input name="next" value="/ui/queue"></form>'
            # Another port of the same host shares its cookies: plant the attacker's pre-session cookie.
            f'<script>document.cookie = "tb_pre={pre}; path=/"; document.getElementById("f").submit();</script>')
    same_host, other_site = Attacker("127.0.0.1"), Attacker("127.0.0.2")
    try:
        for attacker in (same_host, other_site):
            attacker.html = page.encode()
            with victim.page.expect_response(f"{base}/ui/login") as answer:
                victim.page.goto(attacker.url)
            assert answer.value.status == 403, attacker.url
            expect(victim.page.locator("body")).to_contain_text("请求来源不符")
            assert victim.session() == session, attacker.url
            victim.page.goto(f"{base}/ui/queue")
            expect(victim.page.locator("form.who")).to_contain_text("王芳")
            expect(victim.page.locator("form.who")).not_to_contain_text("李强")
    finally:
        same_host.close()
        other_site.close()
    # The victim's own login still works, and the session it gets is new.
    _sign_in(victim, base, demo.tokens["王芳"], policy=False)
    expect(victim.page.locator("form.who")).to_contain_text("王芳")
    assert victim.session() not in (None, session)
    victim.context.close()


DEVICES = """() => navigator.mediaDevices.getUserMedia({video: true, audio: true})
  .then((s) => { s.getTracks().forEach((t) => t.stop()); return "allowed"; }, (e) => e.name)"""


@pytest.mark.browser
@pytest.mark.netns
def test_every_page_runs_under_the_policy_without_a_violation(
        sqlite_demo: Demo, serve_app: Any, browser: Browser) -> None:
    demo = sqlite_demo
    base = serve_app(demo.client.app)
    case = demo.create("李强", "FGSFZRBG", ALL_FGS)
    w = Watched(browser)
    p = w.page
    _sign_in(w, base, demo.tokens["李强"])
    expect(p.locator("h1")).to_contain_text("窗口队列")
    w.check("queue")
    assert p.evaluate(DEVICES) == "NotAllowedError"  # no camera outside the video pages
    # Intake: the item select submits its form on change (a static script now, no inline handler).
    w.goto(f"{base}/ui/cases/new", "intake")
    current = p.locator("select[name=item]").input_value()
    other = next(v for v in p.locator("select[name=item] option").evaluate_all("os => os.map(o => o.value)")
                 if v != current)
    with p.expect_navigation(url=re.compile(rf"item={other}")):
        p.select_option("select[name=item]", other)
    assert p.locator("select[name=item]").input_value() == other
    w.check("intake after the item changed")
    p.select_option("select[name=item]", "FGSFZRBG")
    p.wait_for_url(re.compile("item=FGSFZRBG"))
    p.fill("input[name=name]", "青岛某某贸易有限公司")
    answer_situations(p)
    p.click("button:has-text('确认收件')")
    expect(p.locator("#number")).to_be_visible()
    w.check("intake done")
    w.goto(f"{base}/ui/cases/{case['number']}", "case page")
    expect(p.locator("#diagram")).to_be_visible()
    assert p.evaluate("document.getElementById('diagram').naturalWidth") > 0
    p.click("button[data-trigger=forward]")
    expect(p.locator("#done")).to_be_visible()
    w.check("case page after a transition")
    w.goto(f"{base}/ui/cases/{case['number']}/diagram.svg", "diagram")
    w.goto(f"{base}/ui/nope", "404 page")
    w.goto(f"{base}/verify/NOPE", "certificate verification")
    assert p.evaluate("getComputedStyle(document.querySelector('.v')).paddingTop") != "0px"  # its stylesheet applied
    w.goto(f"{base}/progress", "progress")
    p.fill("#number", case["number"])
    p.fill("#code", case["query_code"])
    p.click("button:has-text('查询')")
    expect(p.locator("#status")).to_be_visible()
    w.check("progress answer")
    # The API docs, all from this server (tests/test_docs_offline.py blocks every other origin).
    w.goto(f"{base}/docs", "API docs")
    expect(p.locator(".opblock").first).to_be_visible()
    w.check("API docs rendered")
    w.goto(f"{base}/redoc", "API reference")
    expect(p.locator("li[data-item-id*='/operation/']").first).to_be_attached()
    w.check("API reference rendered")
    w.context.close()
    # The designer's pages (diagrams as data: images) and the supervisor's dashboard (drawn by script).
    w2 = Watched(browser)
    _sign_in(w2, base, demo.tokens["孙设计"])
    w2.goto(f"{base}/ui/designer", "designer")
    w2.goto(f"{base}/ui/designer/items/FGSFZRBG", "designer item")
    assert w2.page.evaluate("document.querySelector('img.diagram').naturalWidth") > 0
    w2.page.goto(f"{base}/ui/designer")
    w2.page.fill("#source", (ROOT / "catalog" / "items" / "fgs_fuzeren_biangeng.yaml").read_text(encoding="utf-8"))
    w2.page.click("button:has-text('检查')")
    expect(w2.page.locator("body")).to_contain_text("定义有效")
    w2.check("designer check")
    w2.context.close()
    w3 = Watched(browser)
    _sign_in(w3, base, demo.tokens["赵督查"])
    expect(w3.page.locator("#open-total")).not_to_have_text("–")
    expect(w3.page.locator("#chart-throughput svg rect").first).to_be_attached()
    w3.page.wait_for_load_state("networkidle")
    w3.check("dashboard")
    w3.context.close()
    # The video room: camera and microphone allowed here, the room connects, no violation.
    number = inspection_case(demo)
    token = link(demo, open_room(demo, number), "applicant", "张三")
    w4 = Watched(browser)
    w4.goto(f"{base}/video/join?t={token}", "video room")
    w4.page.wait_for_function("() => window.tongbanRoom && window.tongbanRoom.connected", timeout=20_000)
    assert w4.page.evaluate("!!document.getElementById('local').srcObject")
    assert w4.page.evaluate(DEVICES) == "allowed"
    w4.check("video room connected")
    w4.context.close()
