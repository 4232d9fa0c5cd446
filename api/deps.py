"""Explicit dependencies for routes: the database session and the authenticated actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import sqlalchemy as sa
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.contract import declares
from engine.actors import Actor, authenticate
from engine.errors import Forbidden, InvalidInput, PreconditionRequired, Unauthenticated
from storage.db import loop_reader, session_scope


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work. Opening one does no I/O, so it happens on the event loop.

    A sync route (``api.routing.UnitRoute``) commits it on its own thread as it returns; what is
    left here is to close an ended unit, which needs no I/O either. Any other end (an error, an async
    route) runs on a worker thread.
    """
    scope = session_scope(request.app.state.engine, readonly=request.method in ("GET", "HEAD"))
    session = scope.__enter__()
    # The close gets a thread of its own (not one of the pool's, which requests waiting for a
    # connection or for SQLite's writer may all hold) and is shielded: a cancelled request still
    # rolls back and gives its connection and the writer queue back.
    closing = anyio.CapacityLimiter(1)
    try:
        yield session
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(scope.__exit__, type(exc), exc, exc.__traceback__, limiter=closing)
        raise
    if not (session.in_transaction() or session.new or session.dirty or session.deleted):
        scope.__exit__(None, None, None)  # ended already: gives the connection back, nothing to send
        return
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(scope.__exit__, None, None, None, limiter=closing)


# scope="function": the unit of work commits before the response is sent, so a 2xx always means
# committed and the next request sees it (the default would commit after answering).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# The API's one security scheme. auto_error=False: a missing or malformed token is answered by
# get_actor as problem details (401), not by FastAPI's own 403.
bearer = HTTPBearer(scheme_name="bearer", bearerFormat="opaque", auto_error=False,
                    description="窗口人员的 API 令牌 (tongban clerk add 或登录时签发)")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@declares(authenticates=True)
async def get_actor(request: Request, credentials: BearerDep) -> Actor:
    """Who is asking, read on its own, outside the request's unit of work.

    FastAPI runs the route on a pool thread. Had the token been read in the request's write unit,
    the request would hold SQLite's writer queue while waiting for that thread — and with every
    pool thread taken by requests waiting for the queue, nobody would move (seen under load: 30 s
    stalls, then 500s). On SQLite the read takes microseconds in-process, less than a thread hop,
    so it runs right here, on a connection outside the pool (the loop must never wait for a
    pooled connection); a PostgreSQL round trip goes to a thread. (Reading it in the request's
    own PostgreSQL transaction would save round trips but hold a pooled connection between two
    thread-pool calls: the same kind of stall once the pool runs dry.)
    """
    if credentials is None or not credentials.credentials:
        raise Unauthenticated("缺少 Authorization: Bearer 令牌")
    token = credentials.credentials.strip()
    known = request.scope.get("state", {}).get("bearer_actor")  # api.limits checked it already
    if known is not None and known[0] == token:
        return known[1]
    return await authenticate_token(request.app.state.engine, token)


async def authenticate_token(engine: sa.Engine, token: str) -> Actor:
    """The clerk behind a bearer token, read outside any request's unit of work."""
    if engine.dialect.name == "sqlite":
        reader = loop_reader(engine)
        with reader.lock:
            return authenticate(engine, token, driver=reader.connection)
    return await anyio.to_thread.run_sync(authenticate, engine, token)


ActorDep = Annotated[Actor, Depends(get_actor)]


def require_role(actor: Actor, *roles: str) -> None:
    if not actor.roles & set(roles):
        raise Forbidden(f"需要角色: {' / '.join(roles)}", missing=[f"role:{'|'.join(roles)}"])


IfMatchHeader = Annotated[str | None, Header(
    alias="If-Match", max_length=40, pattern=r'^(W/)?"?[0-9]{1,10}(-[0-9a-f]{16})?"?$',
    description='办件的 ETag (如 "7-9f86d081884c7d65"), 或其中的版本号 "7" (乐观并发控制: 只比较版本号)')]


# The version dependencies are ``async`` though they never wait: FastAPI runs a sync dependency
# on a pool thread, and that hop (a hand-off there and back, with the loop woken in between) cost
# a request more than the parsing.
@declares(412, 428, requires_headers=("If-Match",))
async def required_version(if_match: IfMatchHeader = None) -> int:
    """The case version a change is based on; its absence is 428 (the header is required)."""
    version = parse_if_match(if_match)
    if version is None:
        reason = "修改办件须带 If-Match (办件 ETag), 以免覆盖他人的更新"
        raise PreconditionRequired(reason, errors=[{"field": "If-Match", "reason": reason}])
    return version


@declares(412)
async def optional_version(if_match: IfMatchHeader = None) -> int | None:
    """The case version a change is based on, where the change may also apply to any version."""
    return parse_if_match(if_match)


VersionDep = Annotated[int, Depends(required_version)]
OptionalVersionDep = Annotated[int | None, Depends(optional_version)]


def parse_if_match(value: str | None) -> int | None:
    """The version in ``If-Match``: our ETag ``"7-<digest>"``, ``"7"`` or a bare ``7``. Only the
    version is compared: the digest changes with what the server computes (deadline status)."""
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"').split("-", 1)[0]
    if not raw.isdigit():
        raise InvalidInput("If-Match", "须为办件的 ETag (版本号)")
    return int(raw)
