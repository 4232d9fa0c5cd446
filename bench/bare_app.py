"""The HTTP ceiling: a bare ASGI callable, no framework and no database.

``bench_transitions.py`` serves it with the same uvicorn settings as the API and loads it with the
same client, so the API's figure can be read as a share of what the server and client alone
manage on this machine in the same run. It answers ``POST /api/v1/cases/{number}/triggers/{trigger}``
with a small JSON body and ``ETag`` one above the request's ``If-Match`` (so the client's version
chaining works unchanged), and ``GET /healthz`` with 200.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BODY = b'{"number":"3701002026120200004","state":{"id":"accepted","label":"\xe5\xb7\xb2\xe5\x8f\x97\xe7\x90\x86"}}'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):  # the body (empty here) is read, as a framework would
        pass
    version = 0
    for name, value in scope["headers"]:
        if name == b"if-match":
            version = int(value.strip(b'"') or 0)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode()),
               (b"etag", f'"{version + 1}"'.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def create_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    return app
