"""What every page shares: templates, the cookie session, CSRF tokens and HTML error pages.

Signing in takes the clerk's API token once and issues a session token of its own for that login
(``engine.actors.start_session``): the cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) never
holds the API token, and no value the browser brought along becomes the session. Each request
authenticates the session token as the API does its tokens, so revoking the clerk's tokens ends it;
logging out revokes it. POST forms carry a CSRF token derived from the session token; the login
form, before any session, carries an HMAC of a random pre-session cookie set with the form. Both
are checked in constant time; ``api.same_origin`` also refuses cookie-carrying writes from other
origins.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from core import clock
from core.install_secrets import install_secret
from core.settings import get_settings
from engine import form_tokens
from engine.actors import ACCOUNT_ROLES, Actor, authenticate, is_session
from engine.errors import EngineError, Unauthenticated

COOKIE = "tb_session"
PRE_COOKIE = "tb_pre"  # the login form's pre-session cookie
ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))
def _local(at: datetime | str | None) -> str:
    """Times on pages are the product zone's wall time ({{ at|local }}), never UTC's; JSON fields
    carry them as ISO text."""
    if not at:
        return ""
    return clock.local(datetime.fromisoformat(at) if isinstance(at, str) else at).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local"] = _local
templates.env.globals["form_token"] = form_tokens.new  # one per form drawn: {{ form_token() }}
ROLE_LABELS = {"clerk": "收件", "reviewer": "审核", "approver": "审批", "inspector": "踏勘",
               "supervisor": "督查", "designer": "设计", **ACCOUNT_ROLES}  # the header names every role in Chinese


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def current_actor(request: Request, session: Session) -> Actor | None:
    token = session_token(request)
    if not token or not is_session(token):  # an API token in the cookie is no session
        return None
    try:
        return authenticate(session, token)
    except Unauthenticated:
        return None


def require_actor(request: Request, session: Session) -> Actor:
    actor = current_actor(request, session)
    if actor is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return actor


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"tongban-csrf", hashlib.sha256).hexdigest()


def check_csrf(request: Request, value: str | None) -> None:
    token = session_token(request)
    if not token or not value or not hmac.compare_digest(csrf_for(token), value):
        raise EngineError("表单已失效 (CSRF 校验失败), 请刷新页面后重试")


def _login_key() -> bytes:
    return install_secret("session-secret", get_settings().session_secret)


def login_token(pre: str) -> str:
    """The login form's token: an HMAC of the pre-session cookie under the installation's key, so
    a value the browser (or someone planting cookies) brings cannot be paired with a token."""
    return hmac.new(_login_key(), b"login-form:" + pre.encode(), hashlib.sha256).hexdigest()


def new_pre_session() -> str:
    return secrets.token_urlsafe(32)


def login_form_ok(request: Request, value: str | None) -> bool:
    """The POST carries the pre-session cookie and the form's token made from it."""
    pre = request.cookies.get(PRE_COOKIE)
    return bool(pre and value) and hmac.compare_digest(login_token(pre), value or "")


def _cookie(request: Request, resp: Response, name: str, value: str) -> None:
    resp.set_cookie(name, value, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")


def set_pre_session(request: Request, resp: Response, pre: str) -> None:
    _cookie(request, resp, PRE_COOKIE, pre)
    resp.headers["Cache-Control"] = "no-store"  # a cached form would carry a stale token


def set_session(request: Request, resp: Response, token: str) -> None:
    _cookie(request, resp, COOKIE, token)
    resp.delete_cookie(PRE_COOKIE, path="/")


def safe_next(url: str | None) -> str:
    """Only same-site paths under /ui/, or the self-service booth's page (no open redirects)."""
    if url == "/kiosk":
        return url
    if url and url.startswith("/ui/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/ui/"


def render(request: Request, name: str, actor: Actor | None = None, status_code: int = 200,
           **ctx: Any) -> HTMLResponse:
    token = session_token(request)
    ctx.update(request=request, actor=actor, role_labels=ROLE_LABELS,
               csrf=csrf_for(token) if token and actor else "")
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def login_redirect(next_url: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/login?next={quote(next_url)}", status_code=303)


def error_page(request: Request, status: int, title: str, detail: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    page = render(request, "error.html", None, status_code=status, title=title, detail=detail)
    page.headers.update(headers or {})
    return page


# Post/redirect/get with one-time form tokens (engine.form_tokens): every page form answers 303.
def sent_before(session: Session, clerk_id: int | None, form_token: str | None) -> RedirectResponse | None:
    """The same form sent again (Back then submit, a double tap): 303 to where its first sending
    went, acting nowhere; None for a form not sent before."""
    first = form_tokens.first_result(session, clerk_id, form_token)
    return RedirectResponse(first["redirect"], status_code=303) if first else None


def done(session: Session, clerk_id: int | None, form_token: str | None, url: str, **shown: str) -> RedirectResponse:
    """303 to the result ``url``, recorded for the form's token in the transaction of the effect
    (the first one's result, for the second of a concurrent double tap)."""
    return RedirectResponse(form_tokens.remember(session, clerk_id, form_token, url, **shown)["redirect"],
                            status_code=303)
