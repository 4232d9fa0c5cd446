"""The security headers of every answer: pages, API, static files, errors, 404s and redirects.

Pure ASGI, wrapped around the whole app (outside Starlette's error middleware too, so a 500 gets
them as well). A header the route set itself is left as it is.

- ``Content-Security-Policy``: only this origin's scripts, styles, images, media and connections;
  no inline script or style, no plugins, no ``<base>``, forms post here only, framed by nobody.
  Images may be ``data:`` (the designer's diagram previews) or ``blob:``; media ``blob:``. The
  video room's fetches and WebRTC signalling go to this origin (``connect-src 'self'``; ICE and
  media are not governed by CSP).
- ``X-Frame-Options: DENY`` for browsers that predate ``frame-ancestors``; ``nosniff``;
  ``Referrer-Policy: no-referrer`` (a URL may carry a join link's token or a case number).
- ``Permissions-Policy``: camera and microphone for this origin only on the video pages
  (``/video/…``, the only ones calling getUserMedia), denied everywhere else; geolocation nowhere.
- ``Strict-Transport-Security`` only on answers to requests that came over TLS.

The interactive API docs (Swagger UI, ReDoc) are FastAPI's pages built on a CDN: they get a
policy naming that CDN and the hashes of the page's own inline scripts, read from the answer.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

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
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = {
    **POLICY,
    "style-src": f"'self' 'unsafe-inline' {DOCS_CDN} https://fonts.googleapis.com",
    "img-src": "'self' data: blob: https://fastapi.tiangolo.com https://cdn.redoc.ly",
    "font-src": "'self' https://fonts.gstatic.com",
    "worker-src": "'self' blob:",
}
NO_DEVICES = "camera=(), microphone=(), geolocation=(), display-capture=(), usb=(), payment=()"
VIDEO_DEVICES = "camera=(self), microphone=(self), geolocation=(), display-capture=(), usb=(), payment=()"
VIDEO_PREFIX = "/video/"
HSTS = "max-age=31536000"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{k} {v}" for k, v in directives.items())


CSP = policy(POLICY)


def headers_for(scope: Scope, csp: str = CSP) -> list[tuple[str, str]]:
    out = [
        ("content-security-policy", csp),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("permissions-policy", VIDEO_DEVICES if scope.get("path", "").startswith(VIDEO_PREFIX) else NO_DEVICES),
    ]
    if scope.get("scheme") in ("https", "wss"):
        out.append(("strict-transport-security", HSTS))
    return out


def docs_policy(body: bytes) -> str:
    """The docs pages' policy: their CDN, and their inline scripts by hash (no 'unsafe-inline')."""
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(m).digest()).decode() + "'"
                      for m in _INLINE_SCRIPT.findall(body))
    return policy({**DOCS_POLICY, "script-src": f"'self' {DOCS_CDN} {hashes}".strip()})


def _add(message: Message, extra: Iterable[tuple[str, str]]) -> None:
    headers = MutableHeaders(scope=message)
    for name, value in extra:
        if name not in headers:
            headers[name] = value


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") in self.docs_paths:
            await self._docs(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add(message, headers_for(scope))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold the (small) docs page until its body is known: the policy names its scripts."""
        start: Message | None = None
        body: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body" and start is not None:
                body.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                _add(start, headers_for(scope, docs_policy(b"".join(body))))
                await send(start)
                await send({"type": "http.response.body", "body": b"".join(body)})
                return
            await send(message)

        await self.app(scope, receive, hold)
