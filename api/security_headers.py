"""The security headers of every answer: pages, API, static files, errors, 404s and redirects.

Pure ASGI, wrapped around the whole app (outside Starlette's error middleware too, so a 500 gets
them as well). A header the route set itself is left as it is.

- ``Content-Security-Policy``: only this origin's scripts, styles, images, media and connections;
  no inline script or style, no plugins, no ``<base>``, forms post here only, framed by nobody.
  Images may be ``data:`` (the designer's diagram previews) or ``blob:``; media ``blob:``. The
  video room's fetches and WebRTC signalling go to this origin (``connect-src 'self'``; ICE and
  media are not governed by CSP). The booth page (``/kiosk``) may also connect to its ID-card
  reader's local service, that one loopback origin (``settings.kiosk_card_readers``), and no other.
- ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``; ``nosniff``;
  ``Referrer-Policy: no-referrer`` (a URL may carry a join link's token or a case number).
- ``Permissions-Policy``: camera and microphone for this origin only on the video pages, the
  camera alone on the case page (the document camera)
  (``/video/…``, the only ones calling getUserMedia), denied everywhere else; geolocation nowhere.
- ``Strict-Transport-Security`` only on answers to requests that came over TLS.

The interactive API docs (``api.docs``) are served from this origin too, with no inline script
and nothing from elsewhere. Swagger UI (``/docs``) runs under the pages' policy as it is. ReDoc
(``/redoc``) injects style elements at run time — styled-components, and perfect-scrollbar's CSS
as the bundle loads, before any nonce could reach it — and builds its search worker from a blob:
its page alone allows inline styles and blob workers (``REDOC_CSP``). Scripts stay ``'self'``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "media-src": "'self' blob:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
REDOC_POLICY = {**POLICY, "style-src": "'self' 'unsafe-inline'", "worker-src": "'self' blob:"}
NO_DEVICES = "camera=(), microphone=(), geolocation=(), display-capture=(), usb=(), payment=()"
VIDEO_DEVICES = "camera=(self), microphone=(self), geolocation=(), display-capture=(), usb=(), payment=()"
VIDEO_PREFIX = "/video/"
# The case page captures scans from a document camera (高拍仪, a UVC camera): the camera only.
CAMERA_ONLY = "camera=(self), microphone=(), geolocation=(), display-capture=(), usb=(), payment=()"
CASE_PAGE = re.compile(r"/ui/cases/[^/]+")
HSTS = "max-age=31536000"


def policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{k} {v}" for k, v in directives.items())


CSP = policy(POLICY)


REDOC_CSP = policy(REDOC_POLICY)


def devices(path: str) -> str:
    if path.startswith(VIDEO_PREFIX):
        return VIDEO_DEVICES
    return CAMERA_ONLY if CASE_PAGE.fullmatch(path) and path != "/ui/cases/new" else NO_DEVICES


def headers_for(scope: Scope, csp: str = CSP) -> list[tuple[str, str]]:
    out = [
        ("content-security-policy", csp),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("permissions-policy", devices(scope.get("path", ""))),
    ]
    if scope.get("scheme") in ("https", "wss"):
        out.append(("strict-transport-security", HSTS))
    return out


def _add(message: Message, extra: Iterable[tuple[str, str]]) -> None:
    headers = MutableHeaders(scope=message)
    for name, value in extra:
        if name not in headers:
            headers[name] = value


class SecurityHeaders:
    def __init__(self, app: ASGIApp, policies: Mapping[str, str] | None = None) -> None:
        """``policies``: the pages (by path) whose policy is not the strict one (the docs)."""
        self.app = app
        self.policies = dict(policies or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self.policies.get(scope.get("path", ""), CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add(message, headers_for(scope, csp))
            await send(message)

        await self.app(scope, receive, send_with_headers)
