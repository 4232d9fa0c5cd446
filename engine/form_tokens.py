"""One-time form tokens for the pages: a form submitted twice (F5 after a POST, Back and submit
again, a double click) acts once, and the repeat is shown the first result.

Each form a page draws carries a fresh random token. The route that acts on the form records,
in the same transaction as the effect, where the browser was sent afterwards (and any secret the
result page shows, sealed as ``engine.idempotency`` seals it). A submission bearing a token
already used answers that first redirect and writes nothing. The records are the Idempotency-Key
rows of the clerk under a ``form:`` prefix, so they expire and are purged with them. A form
nobody signs in for (the applicant's pages, the hall's ticket machine) keeps its record under
``PUBLIC``, no clerk's id:
the token, random and drawn into one page only, is what ties the repeat to the first result.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from engine import idempotency

PREFIX = "form:"
_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")
PUBLIC = 0  # the "clerk" of forms without a sign-in (clerk ids start at 1)
_HASH = idempotency.request_hash("page-form")  # one token, one result, whatever the repeat carries


def new() -> str:
    return secrets.token_urlsafe(24)


def valid(token: str | None) -> bool:
    return bool(token) and _SHAPE.fullmatch(token or "") is not None


def first_result(session: Session, clerk_id: int | None, token: str | None) -> dict[str, Any] | None:
    """The result recorded for this clerk's token (``{"redirect": url, ...}``), or None if it is new."""
    if clerk_id is None or not valid(token):
        return None
    hit = idempotency.replay(session, clerk_id, PREFIX + str(token), _HASH)
    return orjson.loads(hit[1]) if hit else None


def remember(session: Session, clerk_id: int | None, token: str | None, redirect: str,
             secrets_: dict[str, str] | None = None, **shown: str) -> dict[str, Any]:
    """Record the result of the token's first submission (call before the commit) and answer the
    result the browser is to be shown (``"redirect"``: where to). That is this one, unless the same
    form sent at the same moment (a double tap) recorded its result first: then everything this
    submission did is undone and the other one's result is answered."""
    body = {"redirect": redirect, **shown, **(secrets_ or {})}
    if clerk_id is None or not valid(token):
        return body
    try:
        with session.begin_nested():
            idempotency.remember(session, clerk_id, PREFIX + str(token), _HASH, 303, orjson.dumps(body).decode(),
                                 seal=tuple(secrets_ or ()))
    except IntegrityError:
        session.rollback()
        if (first := first_result(session, clerk_id, token)) is None:
            raise
        return first
    return body
