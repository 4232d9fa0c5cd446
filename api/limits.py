"""Refuse oversized request bodies before reading them (pure ASGI: no per-request task overhead)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                response = problem(413, "请求体过大", f"请求体超过 {self.max_bytes} 字节", "/problems/too-large")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
