"""Who acts: clerks bound to a counter and roles, authenticated by hashed bearer tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from core.clock import now
from engine.errors import InvalidInput, NotFound, Unauthenticated
from engine.statements import SELECT_TOKEN
from states.vocabulary import ACTOR_ROLES
from storage.tables import ApiToken, Clerk, Counter


@dataclass(frozen=True)
class Actor:
    id: int | None
    name: str
    counter_id: str | None
    region_code: str | None
    roles: frozenset[str]
    counter_name: str | None = None  # for pages: people read names, not counter ids

    @property
    def is_system(self) -> bool:
        return "system" in self.roles


SYSTEM = Actor(None, "系统", None, None, frozenset({"system"}))

# Roles of accounts that are not counter staff and never act on a case, so no item may name them:
# ``exchange`` is another platform's integration account (省级政务服务平台 … 办件数据交换), which reads
# the case export with the applicants' personal data (engine.exchange) and nothing else. ``pad`` is a
# window's evaluation pad (评价器), the tablet on which the visitor rates the visit (一次一评): an
# account of its own, so the clerk who served the visit cannot rate it.
ACCOUNT_ROLES = {"exchange": "数据交换账号", "directory_admin": "联盟目录管理员", "pad": "窗口评价器"}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_clerk(
    session: Session, name: str, counter_id: str | None, roles: list[str], token_days: int
) -> tuple[Clerk, str]:
    """Create a clerk and return a fresh token (shown once; only its hash is stored)."""
    unknown = [r for r in roles if (r not in ACTOR_ROLES and r not in ACCOUNT_ROLES) or r in ("system", "applicant")]
    if unknown or not roles:
        raise InvalidInput("roles", f"未知或不可分配的角色: {', '.join(unknown) or '(空)'}")
    if counter_id is not None and session.get(Counter, counter_id) is None:
        raise NotFound(f"窗口 {counter_id} 不存在")
    clerk = Clerk(name=name, counter_id=counter_id, roles=",".join(roles))
    session.add(clerk)
    session.flush()
    return clerk, issue_token(session, clerk, token_days)


def issue_token(session: Session, clerk: Clerk, days: int) -> str:
    token = "tb_" + secrets.token_urlsafe(24)
    at = now()
    session.add(
        ApiToken(clerk_id=clerk.id, token_hash=hash_token(token), created_at=at,
                 expires_at=at + timedelta(days=days))
    )
    return token


def authenticate(db: Session | sa.Engine, token: str, *, driver: Any | None = None) -> Actor:
    """The clerk behind a token: inside a unit of work (a session), or on its own (an engine,
    on a pooled connection or on ``driver``)."""
    values = {"token_hash": hash_token(token)}
    alone = isinstance(db, sa.Engine)
    row = SELECT_TOKEN.first_alone(db, values, driver=driver) if alone else SELECT_TOKEN.first(db, values)
    if row is None:
        raise Unauthenticated("令牌无效")
    if row["revoked_at"] is not None or row["expires_at"] < now() or not row["active"]:
        raise Unauthenticated("令牌已过期或已吊销")
    return Actor(row["id"], row["name"], row["counter_id"], row["region_code"], frozenset(row["roles"].split(",")),
                 row["counter_name"])


def revoke_tokens(session: Session, clerk_id: int) -> int:
    result = session.execute(
        sa.update(ApiToken).where(ApiToken.clerk_id == clerk_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    return int(result.rowcount)


# Page sessions are tokens of their own, told apart from API tokens by this prefix: the cookie
# never holds the API token a clerk types in, and no value a browser brought becomes a session.
SESSION_PREFIX = "tbs_"


def start_session(session: Session, token: str, hours: int) -> tuple[Actor, str]:
    """Sign in on the pages with an API token: a fresh session token, issued for this login only,
    ending after ``hours`` or with the API token, whichever comes first."""
    if token.startswith(SESSION_PREFIX):
        raise Unauthenticated("令牌无效")
    actor = authenticate(session, token)
    parent = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
    value, at = SESSION_PREFIX + secrets.token_urlsafe(32), now()
    session.add(ApiToken(clerk_id=parent.clerk_id, token_hash=hash_token(value), created_at=at,
                         expires_at=min(parent.expires_at, at + timedelta(hours=hours))))
    return actor, value


def is_session(value: str) -> bool:
    return value.startswith(SESSION_PREFIX)


def end_session(session: Session, value: str) -> None:
    """Logout: the session token is revoked (an API token passed here is left alone)."""
    if not is_session(value):
        return
    session.execute(sa.update(ApiToken).where(ApiToken.token_hash == hash_token(value), ApiToken.revoked_at.is_(None))
                    .values(revoked_at=now()))
