"""Request bodies bounded while they stream in, whatever their framing (pure ASGI: no per-request
task overhead).

Every request gets a byte budget before the app sees it:

- a route that declared one on its router (``Router.allow_larger``): uploads, which also enforce
  their own configurable limit while streaming; and public routes whose body carries its own
  credential (a signed carrier callback, a video join token, an applicant's query code), which
  declare it with ``uncredentialed=True``;
- otherwise ``max_body_bytes`` (JSON, forms);
- and a request with no credentials at all (no ``Authorization: Bearer``, no session cookie, no
  video participant key) only ``max_unauthenticated_body_bytes``, unless its route declared an
  uncredentialed budget. FastAPI reads a body before it authenticates: without this, anyone could
  make the server hold the JSON cap per connection (and a chunked body had no cap at all).

A declared ``Content-Length`` beyond the budget is refused before a byte is read. A request
without credentials has its (small) body read whole before any route sees it, so an oversized one
is refused the same way whatever the route would have done first. Otherwise the bytes of each
``http.request`` message are counted as the app reads them; past the budget the read raises,
whatever the app then answers is dropped, and the client gets ``413`` problem details (a page for
page routes) with ``Connection: close``. Nobody reads the rest: uvicorn stops reading a body
nobody asks for (64 KiB of buffer) and closes the connection after that answer. An answer given
before the body was read to its end (a 401 before an upload, say) also closes the connection, so
a client cannot keep one busy with a body nobody wants. If the answer had already started (a
stream), the connection is cut, the answer visibly incomplete.

A client that disconnects mid-body (Starlette's ``ClientDisconnect``, wherever the app read it)
ends the request with one info line instead of an ASGI traceback; nothing was stored, since every
route reads its whole body before it writes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import authenticate_token
from api.pages.web import COOKIE, error_page
from api.problems import problem
from api.routing import flavour_of
from engine.errors import Unauthenticated
from engine.scan_validation import UploadTooLarge

log = logging.getLogger("tongban.limits")
TITLE = "请求体过大"
PARTICIPANT_KEY = b"x-participant-key"  # video participants' credential (api.routes.video)


class BodyTooLarge(HTTPException):
    """Raised into the app from ``receive`` once a body passes its budget."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"请求体超过 {limit} 字节的上限", {"Connection": "close"})
        self.limit = limit


@dataclass
class _Body:
    limit: int
    received: int = 0
    complete: bool = False  # the last http.request message has arrived
    exceeded: bool = False
    started: bool = False  # the app's answer has gone out (its start, at least)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, unauthenticated_bytes: int | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.unauthenticated_bytes = max_bytes if unauthenticated_bytes is None else unauthenticated_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credentialed = has_credentials(scope)
        if credentialed and _has_body(scope):
            # A claim is not a credential: a bearer token is checked before the body is read, so
            # ``Authorization: Bearer junk`` earns the unauthenticated budget, not the JSON cap.
            credentialed = await bearer_holds(scope)
        body = _Body(budget(scope, self.max_bytes, self.unauthenticated_bytes, credentialed))
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > body.limit:
            log.info("refused %s %s: Content-Length %s over the budget %d", scope["method"], scope["path"],
                     length.decode(), body.limit)
            await _refuse(scope, send, body.limit)
            return
        if not _has_body(scope):
            body.complete = True
        elif not credentialed:
            # Read whole (it is small) before any route sees it: an oversized body is refused the
            # same way whether the route would have read it, refused the request first, or neither.
            whole = await _read_whole(scope, receive, send, body)
            if whole is None:
                return
            receive = whole

        async def limited_receive() -> Message:
            if body.exceeded:
                raise BodyTooLarge(body.limit)
            message = await receive()
            if message["type"] == "http.request":
                body.received += len(message.get("body", b""))
                if body.received > body.limit:
                    body.exceeded = True
                    raise BodyTooLarge(body.limit)
                body.complete = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            if body.exceeded:
                return  # the app's answer to a body it could not finish: ours replaces it
            if message["type"] == "http.response.start":
                body.started = True
                if not body.complete:  # answered without reading it all: do not wait for the rest
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception as exc:
            if _only(exc, ClientDisconnect):
                _went_away(scope, body)
                return
            if not body.exceeded:
                raise
            if not isinstance(exc, BodyTooLarge):
                log.info("%s %s ended by %s once its body passed the budget", scope["method"], scope["path"],
                         type(exc).__name__)
        if body.exceeded:
            log.info("refused %s %s: body over the budget %d", scope["method"], scope["path"], body.limit)
            if body.started:
                # Nothing valid can be said any more: end without completing the answer (uvicorn
                # closes the connection), rather than a last chunk that would pass it off as whole.
                log.warning("body of %s %s passed its budget after the answer started: connection cut",
                            scope["method"], scope["path"])
                return
            await _refuse(scope, send, body.limit)


async def _read_whole(scope: Scope, receive: Receive, send: Send, body: _Body) -> Receive | None:
    """The whole body within the budget, handed on as one message (None: refused, or gone)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            _went_away(scope, body)
            return None
        chunk = message.get("body", b"")
        body.received += len(chunk)
        if body.received > body.limit:
            log.info("refused %s %s: body over the budget %d without credentials", scope["method"],
                     scope["path"], body.limit)
            await _refuse(scope, send, body.limit)
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body.received = 0  # counted again as the app reads it
    pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()  # then: the disconnect, when it comes

    return replay


def _went_away(scope: Scope, body: _Body) -> None:
    log.info("client went away during the body of %s %s (%d bytes received): request dropped",
             scope["method"], scope["path"], body.received)


def allow_larger(app: ASGIApp, path_pattern: str, max_bytes: Callable[[], int],
                 uncredentialed: bool = False) -> None:
    """Requests whose path matches ``path_pattern`` (a regex) may carry up to ``max_bytes()``;
    without credentials too when ``uncredentialed`` (else they get the unauthenticated budget)."""
    state = app.state  # type: ignore[attr-defined]
    state.body_limits = [*getattr(state, "body_limits", []),
                         (re.compile(path_pattern), max_bytes, uncredentialed)]


def budget(scope: Scope, default: int, unauthenticated: int, credentialed: bool) -> int:
    """The byte budget of this request's body."""
    app = scope.get("app")
    for pattern, max_bytes, uncredentialed in getattr(getattr(app, "state", None), "body_limits", ()):
        if pattern.fullmatch(scope.get("path", "")):
            if credentialed or uncredentialed:
                return int(max_bytes())
            break
    return default if credentialed else min(default, unauthenticated)


async def bearer_holds(scope: Scope) -> bool:
    """False when the request's bearer token is not a valid one (other credentials — a session
    cookie, a participant key — are left to their routes; a page form is small anyway)."""
    token = next((v[7:].strip().decode("latin-1") for n, v in scope["headers"]
                  if n == b"authorization" and v[:7].lower() == b"bearer "), None)
    engine = getattr(getattr(scope.get("app"), "state", None), "engine", None)
    if not token or engine is None:  # (an app without the product's database: nothing to ask)
        return True
    try:
        actor = await authenticate_token(engine, token)
    except Unauthenticated:
        return False
    scope.setdefault("state", {})["bearer_actor"] = (token, actor)  # get_actor need not ask again
    return True


def has_credentials(scope: Scope) -> bool:
    """Whether the request claims to be someone (the claim is checked later, by the route)."""
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:7].lower() == b"bearer " and value[7:].strip():
            return True
        if name == PARTICIPANT_KEY and value.strip():
            return True
        if name == b"cookie" and cookie_parser(value.decode("latin-1")).get(COOKIE):
            return True
    return False


def _only(exc: BaseException, kind: type[BaseException]) -> bool:
    """``exc`` is a ``kind``, or a group (from a task group) of nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only(e, kind) for e in exc.exceptions)
    return isinstance(exc, kind)


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or (length is not None and length.strip() != b"0")


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope["headers"] if k == name), None)


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    detail = f"请求体超过 {limit} 字节的上限, 已拒绝, 未做任何更改"
    headers = {"Connection": "close"}
    request = Request(scope)
    response: Response = problem(413, TITLE, detail, UploadTooLarge.type, headers)
    if flavour_of(request) == "page":
        try:
            response = error_page(request, 413, TITLE, detail, headers)
        except Exception:  # a page that cannot render still gets the refusal, as problem details
            log.exception("413 page could not be rendered")
    await response(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
