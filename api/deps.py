"""Explicit dependencies for routes: the database session and the authenticated actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Header, Request
from sqlmodel import Session

from engine.actors import Actor, authenticate
from engine.errors import Forbidden, InvalidInput, Unauthenticated
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


async def get_actor(request: Request, authorization: Annotated[str | None, Header()] = None) -> Actor:
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
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthenticated("缺少 Authorization: Bearer 令牌")
    engine, token = request.app.state.engine, authorization[7:].strip()
    if engine.dialect.name == "sqlite":
        reader = loop_reader(engine)
        with reader.lock:
            return authenticate(engine, token, driver=reader.connection)
    return await anyio.to_thread.run_sync(authenticate, engine, token)


ActorDep = Annotated[Actor, Depends(get_actor)]


def require_role(actor: Actor, *roles: str) -> None:
    if not actor.roles & set(roles):
        raise Forbidden(f"需要角色: {' / '.join(roles)}", missing=[f"role:{'|'.join(roles)}"])


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: "7"`` (our ETag) or a bare ``7``."""
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise InvalidInput("If-Match", "须为案件的 ETag (版本号)")
    return int(raw)
