"""Explicit dependencies for routes: the database session and the authenticated actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from engine.actors import Actor, authenticate
from engine.errors import Forbidden, InvalidInput, Unauthenticated
from storage.db import session_scope


def get_session(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.engine, readonly=request.method in ("GET", "HEAD")) as session:
        yield session


# scope="function": the unit of work commits before the response is sent, so a 2xx always means
# committed and the next request sees it (the default would commit after answering).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_actor(request: Request, authorization: Annotated[str | None, Header()] = None) -> Actor:
    """Who is asking, read in a read-only unit of its own.

    FastAPI runs each sync dependency and the route as separate thread-pool calls. Had the token
    been read in the request's write unit, the request would hold SQLite's writer queue while
    waiting for a thread to run its route — and with every pool thread taken by requests waiting
    for that queue, nobody would move (seen under load: 30 s stalls, then 500s).
    """
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthenticated("缺少 Authorization: Bearer 令牌")
    with session_scope(request.app.state.engine, readonly=True) as session:
        return authenticate(session, authorization[7:].strip())


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
