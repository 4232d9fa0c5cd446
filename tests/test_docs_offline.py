"""The interactive API docs work offline: Swagger UI (/docs) and ReDoc (/redoc) load nothing but
this server's own files, under the product's Content-Security-Policy.

Without a browser: every script, stylesheet and icon the two pages name is a path of this server
that answers, from the locked ``fastapi-offline`` package; no inline script; the pages' policies.
In headless Chromium against a real uvicorn server (a network namespace of its own, so even a
slip could not leave the machine): every request to another origin is blocked and recorded — none
may be attempted — both UIs render the operations of /openapi.json, Swagger UI's "Try it out"
reaches the API, and no CSP violation is reported. Screenshots are kept for a human to look at.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import Demo
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from api import docs
from api.security_headers import CSP, REDOC_CSP
from core.settings import ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push([e.violatedDirective, e.blockedURI || "inline", e.sourceFile, e.lineNumber].join(" ")));
"""


class _Refs(HTMLParser):
    """The URLs a page loads (src/href of scripts, stylesheets, icons) and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.lang = ""
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if tag == "script":
            if a.get("src"):
                self.urls.append(a["src"] or "")
            else:
                self._in_script_without_src = True
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"] or "")

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False


def _refs(html: str) -> _Refs:
    parser = _Refs()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("path", [docs.SWAGGER_PATH, docs.REDOC_PATH])
def test_the_docs_pages_load_only_this_servers_files(sqlite_demo: Demo, path: str) -> None:
    client = sqlite_demo.client
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    refs = _refs(page.text)
    assert refs.lang == "zh-CN" and "通办" in page.text
    assert refs.inline_scripts == 0, "an inline script would need a hash or 'unsafe-inline' in the policy"
    assert refs.urls and all(u.startswith("/") and not u.startswith("//") for u in refs.urls), refs.urls
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    scripts = 0
    for url in refs.urls:
        r = client.get(url)
        assert r.status_code == 200, url
        if url.endswith(".js"):
            scripts += 1
            assert "javascript" in r.headers["content-type"], url
        assert r.headers["x-content-type-options"] == "nosniff"
    assert scripts == 2  # the UI's bundle and the static script that starts it
    bundle = next(u for u in refs.urls if "bundle" in u or "standalone" in u)
    assert len(client.get(bundle).content) > 500_000  # the real UI, not a stand-in
    # The policy: scripts from this origin only, nothing from elsewhere.
    csp = page.headers["content-security-policy"]
    assert csp == (CSP if path == docs.SWAGGER_PATH else REDOC_CSP)
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["script-src"] == ["'self'"] and directives["default-src"] == ["'self'"]
    assert not [v for vs in directives.values() for v in vs if "://" in v or v.startswith("https")], csp


def test_redocs_bundle_names_no_other_host_for_what_it_loads_and_is_cached(sqlite_demo: Demo) -> None:
    client = sqlite_demo.client
    r = client.get(docs.REDOC_BUNDLE_PATH)
    assert r.status_code == 200 and docs.REDOCLY_LOGO not in r.content
    assert r.headers["cache-control"].startswith("public")
    again = client.get(docs.REDOC_BUNDLE_PATH, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # The Swagger UI assets come from the locked package, through the static mount.
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        assert client.get(f"/static/{name}").status_code == 200, name
    # The product's own static files still win over the package's.
    assert client.get("/static/app.css").status_code == 200


# --- in Chromium -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


class Offline:
    """A browser page that may reach only ``base``: any other request is aborted and recorded."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.base = base.rstrip("/") + "/"
        self.context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        self.context.add_init_script(VIOLATIONS)
        self.elsewhere: list[str] = []
        self.console: list[str] = []
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(self.base) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.elsewhere.append(url)
            route.abort("blockedbyclient")

    def violations(self) -> list[Any]:
        events = self.page.evaluate("window.__csp || []")
        console = [m for m in self.console if "Content Security Policy" in m or "Content-Security-Policy" in m]
        return [*events, *console]

    def shot(self, tmp: Path, name: str) -> Path:
        path = tmp / f"{name}.png"
        self.page.screenshot(path=str(path))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ARTIFACTS / path.name)
        return path


@pytest.mark.browser
@pytest.mark.netns
def test_swagger_ui_and_redoc_render_in_chromium_with_nothing_but_this_server(
        sqlite_demo: Demo, serve_app: Any, browser: Browser, tmp_path: Path) -> None:
    base = serve_app(sqlite_demo.client.app)
    schema = sqlite_demo.client.get("/openapi.json").json()
    ops = {o["operationId"]: o for p in schema["paths"].values() for o in p.values()}
    count = len(ops)
    assert count > 30

    # Swagger UI: every operation listed, with its operationId; "Try it out" reaches the API.
    w = Offline(browser, base)
    p = w.page
    p.goto(f"{base}{docs.SWAGGER_PATH}")
    expect(p.locator(".opblock").first).to_be_visible()
    expect(p.locator(".opblock")).to_have_count(count)
    expect(p.locator(".opblock-summary-operation-id", has_text=re.compile("^createCase$"))).to_be_visible()
    expect(p.locator(".info .title")).to_contain_text(schema["info"]["title"])
    expect(p.locator(".info")).to_contain_text("通办")
    expect(p.locator(".opblock-tag-section", has_text="办件: 收件").first).to_be_visible()
    w.shot(tmp_path, "docs-swagger-ui-top")
    health = p.locator("#operations-public-getHealth")
    health.locator(".opblock-summary").click()
    health.locator("button.try-out__btn").click()
    health.locator("button.execute").click()
    expect(health.locator(".live-responses-table tr.response .response-col_status").first).to_have_text("200")
    expect(health.locator(".live-responses-table .microlight").first).to_contain_text('"ok"')
    p.wait_for_load_state("networkidle")
    p.locator("#operations-cases-createCase .opblock-summary").click()
    expect(p.locator("#operations-cases-createCase .responses-table")).to_contain_text("application/problem+json")
    shot = w.shot(tmp_path, "docs-swagger-ui-operation")
    assert shot.stat().st_size > 20_000
    assert w.elsewhere == [] and w.violations() == [], (w.elsewhere, w.violations())
    assert not [m for m in w.console if m.startswith(("error", "pageerror"))], w.console
    w.context.close()

    # ReDoc: the menu has every operation, the createCase operation is rendered with its summary.
    w = Offline(browser, base)
    p = w.page
    p.goto(f"{base}{docs.REDOC_PATH}#tag/cases/operation/createCase")  # a deep link, as a colleague would send
    # ReDoc lays out the whole schema before its first heading: seconds on a loaded machine.
    expect(p.locator("h1").first).to_contain_text(schema["info"]["title"], timeout=60_000)
    expect(p.locator("li[data-item-id*='/operation/']")).to_have_count(count)
    section = p.locator("[id='tag/cases/operation/createCase']")
    expect(section.locator("h2").first).to_have_text(ops["createCase"]["summary"])
    expect(section).to_be_in_viewport()
    expect(section).to_contain_text("/api/v1/cases")
    expect(p.locator("body")).to_contain_text("通办")
    p.wait_for_load_state("networkidle")
    w.shot(tmp_path, "docs-redoc")
    assert w.elsewhere == [] and w.violations() == [], (w.elsewhere, w.violations())
    assert not [m for m in w.console if m.startswith(("error", "pageerror"))], w.console
    w.context.close()
