"""Refuse oversized request bodies before reading them (pure ASGI: no per-request task overhead)."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            limit = _limit_for(scope, self.max_bytes)
            if length.isdigit() and int(length) > limit:
                response = problem(413, "请求体过大", f"请求体超过 {limit} 字节", "/problems/too-large")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def allow_larger(app: ASGIApp, path_pattern: str, max_bytes: Callable[[], int]) -> None:
    """Let requests whose path matches ``path_pattern`` (a regex) carry up to ``max_bytes()``:
    upload routes, which enforce their own configurable limit while streaming the body."""
    state = app.state  # type: ignore[attr-defined]
    state.body_limits = [*getattr(state, "body_limits", []), (re.compile(path_pattern), max_bytes)]


def _limit_for(scope: Scope, default: int) -> int:
    app = scope.get("app")
    for pattern, max_bytes in getattr(getattr(app, "state", None), "body_limits", ()):
        if pattern.fullmatch(scope.get("path", "")):
            return max_bytes()
    return default
