"""Writes that ride on the browser's cookies only from the product's own pages (pure ASGI).

A POST/PUT/PATCH/DELETE carrying the session cookie, and every sign-in, must come
from the request's own origin: scheme://host[:port] as this server sees it. The evidence, in order:
``Origin``; when it is absent or ``null``, the origin of ``Referer``; when there is neither,
``Sec-Fetch-Site: same-origin``. That last one matters because the pages answer with
``Referrer-Policy: no-referrer``, under which Chromium sends a same-origin form POST with
``Origin: null`` and no ``Referer``; ``Sec-Fetch-*`` headers are set by the browser alone (no page
script can), and a cross-site or sandboxed sender gets another value. Requests with none of these
(old browsers, scripts replaying a cookie) are refused: a cookie alone proves nothing.

Requests with an ``Authorization`` header are the API's bearer clients, not cookie-authenticated:
a page elsewhere cannot set that header without a CORS preflight, which this app never grants.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from api.pages import web
from api.problems import access_log, problem
from engine.errors import EngineError

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALWAYS = frozenset({"/ui/login"})  # checked even without a cookie: a sign-in is a session change
DEFAULT_PORTS = {"http": 80, "https": 443}
class CrossOrigin(EngineError):
    status, type, title = 403, "/problems/cross-origin", "请求来源不符"
    help = ("以登录会话 (Cookie) 提交的修改只接受来自本系统自己页面的请求 (Origin 或 Referer 与本站一致), "
            "以防其他网站冒用您的登录。集成系统请改用 Authorization: Bearer 令牌, 它不受此限制。")


TITLE = CrossOrigin.title
DETAIL = ("该操作只能在本系统自己的页面上提交, 来自其他网站或无法确认来源的请求已被拒绝, 未做任何更改。"
          "请打开通办页面重新操作 (若一直如此, 请使用新版浏览器)。")


Origin = tuple[str, str, int]


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` (or a URL) as a comparable triple; None when it is no origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def own_origin(scope: Scope, host: str) -> Origin | None:
    scheme = scope.get("scheme", "http")
    return parse_origin(f"{scheme}://{host}") if host else None


def same_origin(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    own = own_origin(scope, headers.get(b"host", b"").decode("latin-1"))
    if own is None:
        return False
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    if origin and origin != "null":
        return parse_origin(origin) == own
    referer = headers.get(b"referer", b"").decode("latin-1")
    if referer:
        return parse_origin(referer) == own
    return headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower() == "same-origin"


def needs_check(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    if scope["method"] not in UNSAFE or b"authorization" in headers:
        return False
    if scope["path"] in ALWAYS:
        return True
    return web.COOKIE in cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))


class SameOrigin:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if needs_check(scope, headers) and not same_origin(scope, headers):
                access_log.warning("refused 403 %s %s: cross-origin (Origin %r, Referer %r, Sec-Fetch-Site %r)",
                                   scope["method"], scope["path"], headers.get(b"origin"), headers.get(b"referer"),
                                   headers.get(b"sec-fetch-site"))
                if scope["path"].startswith("/api/"):
                    response = problem(403, TITLE, DETAIL, CrossOrigin.type)
                else:
                    response = web.error_page(Request(scope), 403, TITLE, DETAIL)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
