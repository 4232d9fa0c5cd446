"""What every page shares: templates, the cookie session, CSRF tokens and HTML error pages.

The session cookie holds the clerk's API token (HttpOnly, SameSite=Strict, Secure over HTTPS):
each request authenticates it exactly as the API does, so revoking a token ends the session.
POST forms also carry a CSRF token derived from the session token, checked in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from core import clock
from engine.actors import Actor, authenticate
from engine.errors import EngineError, Unauthenticated

COOKIE = "tb_session"
ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))
def _local(at: datetime | str | None) -> str:
    """Times on pages are the product zone's wall time ({{ at|local }}), never UTC's; JSON fields
    carry them as ISO text."""
    if not at:
        return ""
    return clock.local(datetime.fromisoformat(at) if isinstance(at, str) else at).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local"] = _local
ROLE_LABELS = {"clerk": "收件", "reviewer": "审核", "approver": "审批", "inspector": "踏勘",
               "supervisor": "督查", "designer": "设计"}


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def session_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def current_actor(request: Request, session: Session) -> Actor | None:
    token = session_token(request)
    if not token:
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


def safe_next(url: str | None) -> str:
    """Only same-site paths under /ui/ (no open redirects)."""
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
