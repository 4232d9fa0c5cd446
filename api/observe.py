"""Each request's id, its access log line and its latency, by route template.

Pure ASGI, just inside ``ClientAddress`` (so the client is the resolved one). The request id is
the client's ``X-Request-ID`` when it is a plausible one (letters, digits, ``._-``, at most 64),
else a new one; it is echoed in the answer's ``X-Request-ID`` and carried by every log record
written while the request is served (core.logs). The latency is labelled with the matched
route's template (``/api/v1/cases/{number}``), never the raw path: one series per route, not
one per case. Unmatched paths share the label ``(unmatched)``. The access log names the path
without its query string: a query may carry a progress query code.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import metrics
from core.logs import request_id
from core.settings import get_settings

HEADER = "X-Request-ID"
# Any other method (a scanner's) shares one label: one series per method, not per made-up word.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PLAUSIBLE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access = logging.getLogger("tongban.access")


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if path:
        return str(path)
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    return "(unmatched)"


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = get_settings().access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = given if _PLAUSIBLE.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            metrics.HTTP_SECONDS.labels(method=method, route=route, status=str(status)).observe(seconds)
            client = scope.get("client")
            if self.log:
                access.info("%s %s %s %.1fms", scope["method"], scope["path"], status, seconds * 1000, extra={
                    "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                    "duration_ms": round(seconds * 1000, 2), "client": client[0] if client else None,
                    "_quiet": ("method", "path", "status", "duration_ms")})
            request_id.reset(token)
